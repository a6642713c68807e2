// TCP through an offloading TUN on the data plane's one path: what B sends
// arrives at A as runs of segments the shard joins into super-packets (GRO on
// the TUN write), and what A's kernel sends is handed to the shard as TSO
// super-packets that it cuts into segments before sealing (GSO). B plays a
// TCP peer by hand (fixtures/tcp4.ts), so the test sees every segment.
import assert from 'node:assert/strict';
import net from 'node:net';
import { bindSocket, listenSocket, socketInNetns } from '@wirecage/netns';
import { A_INNER, B_INNER, RtcLab, until } from './fixtures/rtc-lab.js';
import { ACK, PSH, SYN, parseTcp4, tcp4, type Segment } from './fixtures/tcp4.js';

const TCP_PORT = 5201;
const B_PORT = 40000;
/** What B sends per segment: well under the MSS of A's 1420-byte TUN. */
const MSS = 1000;
/** Segments B sends in one burst: 40 kB, inside the 64 kB window A offers without window scaling. */
const BURST = 40;

interface Conn {
  /** B's next sequence number, and what B has acknowledged of A's stream. */
  seq: number;
  ack: number;
  /** A's side of the connection. */
  socket: net.Socket;
  received: Buffer[];
}

/** Everything A sent B from `from` on, in order (B opens each message into one segment). */
function segmentsFromA(lab: RtcLab, from: number): Segment[] {
  return lab.delivered
    .slice(from)
    .map((p) => parseTcp4(p))
    .filter((s): s is Segment => s !== null);
}

/** A listens in its namespace, B connects by hand: SYN (MSS 1380), A's SYN-ACK, B's ACK. */
async function connect(lab: RtcLab): Promise<{ conn: Conn; server: net.Server }> {
  const fd = socketInNetns(lab.a.fd, 4, 'tcp');
  bindSocket(fd, A_INNER, TCP_PORT);
  listenSocket(fd);
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen({ fd }, resolve));
  const isn = 1_000_000;
  const base = lab.delivered.length;
  const send = (seq: number, ack: number, flags: number, extra: { payload?: Buffer; mss?: number } = {}) =>
    lab.sendFromB(tcp4({ src: B_INNER, dst: A_INNER, sport: B_PORT, dport: TCP_PORT, seq, ack, flags, ...extra }));
  send(isn, 0, SYN, { mss: 1380 });
  let synAck: Segment | undefined;
  await until(
    () => (synAck = segmentsFromA(lab, base).find((s) => s.flags === (SYN | ACK))) !== undefined,
    () => `no SYN-ACK from A; A drops ${JSON.stringify(lab.dropsA())}`,
  );
  const conn = { seq: isn + 1, ack: synAck!.seq + 1 };
  send(conn.seq, conn.ack, ACK);
  const socket = await accepted;
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  return { conn: { ...conn, socket, received }, server };
}

describe('data plane, run to completion: TCP through an offloading TUN', function () {
  this.timeout(120_000);
  let lab: RtcLab;
  let server: net.Server | null = null;
  let conn: Conn | null = null;

  afterEach(async () => {
    conn?.socket.destroy();
    conn = null;
    server?.close();
    server = null;
    await lab?.close();
  });

  // workers 0: the shard serves on this thread, so a burst B sends is all in A's socket before the
  // shard reads it (one recvmmsg of 16 per batch), and the runs it joins are known.
  it("joins B's segments into super-packets that A's stack cuts back into the very stream B sent", async () => {
    lab = await RtcLab.create(0, { offload: true });
    assert.ok(lab.tun.offload.vnetHdr && lab.tun.offload.tso, `offloads ${JSON.stringify(lab.tun.offload)}`);
    await lab.handshake();
    ({ conn, server } = await connect(lab));
    const c = conn;
    const stream = Buffer.alloc(BURST * MSS);
    for (let i = 0; i < stream.length; i++) stream[i] = (i * 31 + (i >> 8)) & 0xff;
    const rxPackets = async () => Number((await lab.a.exec('cat', `/sys/class/net/${lab.tun.name}/statistics/rx_packets`)).stdout);
    const coalesced = () => lab.plane.shardStats().reduce((t, s) => t + s.coalescedPackets, 0);
    const before = { coalesced: coalesced(), writes: await rxPackets(), from: lab.delivered.length };
    for (let i = 0; i < BURST; i++) {
      const payload = stream.subarray(i * MSS, (i + 1) * MSS);
      const flags = ACK | (i === BURST - 1 ? PSH : 0);
      lab.sendFromB(tcp4({ src: B_INNER, dst: A_INNER, sport: B_PORT, dport: TCP_PORT, seq: c.seq, ack: c.ack, flags, payload }));
      c.seq += MSS;
    }
    const got = () => c.received.reduce((t, d) => t + d.length, 0);
    await until(
      () => got() >= stream.length && segmentsFromA(lab, before.from).some((s) => s.ack === c.seq),
      () => `A's socket got ${got()} of ${stream.length} bytes; A drops ${JSON.stringify(lab.dropsA())}`,
    );
    assert.ok(Buffer.concat(c.received).equals(stream), 'A read another byte stream than B sent');
    const joined = coalesced() - before.coalesced;
    const writes = (await rxPackets()) - before.writes;
    // Runs never cross a batch (16 datagrams per read): at least 3 writes, far fewer than 40.
    assert.ok(writes >= 3 && writes <= 10, `${writes} TUN writes for ${BURST} segments`);
    assert.equal(joined, BURST - writes, `${joined} segments joined into ${writes} writes`);
  });

  for (const workers of [0, 2]) {
    it(`cuts A's TSO super-packets into the segments A's stack sent, each sealed alone (workers ${workers})`, async () => {
      lab = await RtcLab.create(workers, { offload: true });
      await lab.handshake();
      ({ conn, server } = await connect(lab));
      const c = conn;
      const stream = Buffer.alloc(512 * 1024);
      for (let i = 0; i < stream.length; i++) stream[i] = (i * 7 + (i >> 10)) & 0xff;
      const sealed = () => lab.plane.shardStats().reduce((t, s) => t + s.egressPackets, 0);
      const slotsBefore = sealed();
      const wireBefore = lab.wire.length;
      let seen = lab.delivered.length;
      const start = c.ack;
      const parts = new Map<number, Buffer>();
      let segments = 0;
      c.socket.end(stream);
      // B acknowledges what arrived in order, as a receiver with a 64 kB window does.
      await until(
        () => {
          const before = c.ack;
          for (const s of segmentsFromA(lab, seen)) {
            segments++;
            assert.ok(s.payload.length <= 1380, `a ${s.payload.length}-byte segment left the shard`);
            const prev = parts.get(s.seq);
            assert.ok(!prev || prev.equals(s.payload), `two different segments at ${s.seq - start}`);
            if (s.payload.length > 0) parts.set(s.seq, s.payload);
          }
          seen = lab.delivered.length;
          for (let p = parts.get(c.ack); p; p = parts.get(c.ack)) c.ack += p.length;
          if (c.ack !== before)
            lab.sendFromB(tcp4({ src: B_INNER, dst: A_INNER, sport: B_PORT, dport: TCP_PORT, seq: c.seq, ack: c.ack, flags: ACK }));
          return c.ack - start >= stream.length;
        },
        () => `B has ${c.ack - start} of ${stream.length} bytes in order; A drops ${JSON.stringify(lab.dropsA())}`,
      );
      const got = Buffer.concat([...parts.keys()].sort((x, y) => x - y).map((k) => parts.get(k)!));
      assert.ok(got.subarray(0, stream.length).equals(stream), 'B got another byte stream than A sent');
      // Every segment was sealed alone (one transport message each), from fewer TUN reads: super-packets.
      const slots = sealed() - slotsBefore;
      const messages = lab.wire.length - wireBefore;
      assert.ok(messages >= segments, `${messages} messages for ${segments} segments`);
      assert.ok(slots * 2 < segments, `${slots} TUN reads for ${segments} segments: no TSO super-packets`);
    });
  }
});
