// The sharded data plane without the native pumps: the test is the TUN reader
// and UDP writer (it fills and drains the rings on this thread), the shards
// are real piscina workers running the compiled engine.
import assert from 'node:assert/strict';
import {
  canProduce,
  consume,
  produce,
  readVnetHeader,
  segmentCount,
  sum16,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  writeSegment,
  type PacketRing,
} from '@wirecage/tun';
import { DataPlane } from '../src/data/plane.js';
import { parseCidr, systemClock } from '../src/index.js';
import { Transport } from '../src/messages.js';
import { ipv4Packet, linkedPair, type LinkedPair } from './fixtures/net.js';

const SHARDS = 2;

/** Packet i: an IPv4 UDP packet from A to B whose payload starts with i. */
function numbered(i: number, size = 64): Buffer {
  const body = Buffer.alloc(size);
  body.writeUInt32BE(i, 0);
  return ipv4Packet('10.0.0.1', '10.0.0.2', body);
}

/**
 * Pushes every packet of `input` through `ring` and hands each emitted one to `out` in
 * order; the shards run meanwhile. Never blocks this thread (the plane's messages are
 * handled between rounds).
 */
async function pump(
  ring: PacketRing,
  plane: DataPlane,
  count: number,
  input: (i: number) => Uint8Array,
  out: (packet: Uint8Array) => void,
  offset: number,
  opts: { from?: { family: 4; port: number; addr: Uint8Array }; between?: (sent: number) => void } = {},
): Promise<void> {
  let sent = 0;
  let freed = 0;
  let idleSince = 0;
  while (freed < count) {
    let n = 0;
    while (sent < count && canProduce(ring) && n < 256) {
      assert.ok(produce(ring, plane.doorbell, input(sent), offset, opts.from));
      sent++;
      n++;
      opts.between?.(sent);
    }
    const c = consume(ring, (p) => {
      out(p);
      return true;
    });
    freed += c;
    if (n === 0 && c === 0) {
      // Let the main thread's event loop run (shard messages, restarts) while shards work.
      await new Promise((r) => setImmediate(r));
      idleSince ||= Date.now();
      // Generous: worker start-up on a loaded two-core machine takes seconds.
      if (Date.now() - idleSince > 20_000)
        throw new Error(
          `stalled: sent ${sent}, freed ${freed}, shards ${JSON.stringify(plane.shardStats().map((s) => [s.egressPackets, s.ingressPackets, s.restarts]))}`,
        );
    } else {
      idleSince = 0;
    }
  }
}

/** Lets the event loop turn until `done` holds; shard messages arrive between turns. */
async function until(done: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** IPv4 and TCP headers (ACK, then PSH at the end) for `payload` bytes from src to dst, checksums left for writeSegment. */
function tcpHeaders(src: string, dst: string, payload: number): Buffer {
  const p = Buffer.alloc(40);
  p[0] = 0x45;
  p.writeUInt16BE(40 + payload > 65535 ? 0 : 40 + payload, 2);
  p.writeUInt16BE(0x4000, 6);
  p[8] = 64;
  p[9] = 6;
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  p.writeUInt16BE(~sum16(p, 0, 20, 0) & 0xffff, 10);
  p.writeUInt16BE(5201, 20);
  p.writeUInt16BE(40000, 22);
  p.writeUInt32BE(1, 24);
  p.writeUInt32BE(1, 28);
  p[32] = 5 << 4;
  p[33] = 0x18;
  p.writeUInt16BE(1000, 34);
  return p;
}

function counterOf(msg: Uint8Array): bigint {
  return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength).readBigUInt64LE(Transport.COUNTER);
}

describe('sharded data plane (piscina workers over SharedArrayBuffer rings)', function () {
  this.timeout(120_000);
  let pair: LinkedPair;
  let plane: DataPlane;

  beforeEach(async () => {
    pair = linkedPair({ device: { clock: systemClock } });
    // A session first, made on the main threads as usual.
    pair.a.device.sendPacket(numbered(0));
    await pair.net.run();
    assert.equal(pair.b.received.length, 1);
    pair.b.received.length = 0;
    pair.net.wire.length = 0;
    plane = DataPlane.start(pair.a.device, { workers: SHARDS, ringSlots: 1024, batchShift: 3 });
  });

  afterEach(async () => {
    await plane.close();
    pair.net.close();
  });

  it('a million packets through two shards: every nonce is used once, B gets every packet in order', async () => {
    const N = 1_000_000;
    const seen = new Uint8Array(N + 16);
    let dup = 0;
    let expect = 1;
    let outOfOrder = 0;
    const b = pair.b.device;
    pair.b.received.length = 0;
    await pump(
      plane.egress,
      plane,
      N,
      (i) => numbered(i + 1),
      (msg) => {
        const c = Number(counterOf(msg));
        if (seen[c]) dup++;
        seen[c] = 1;
        b.receiveUdp(Buffer.from(msg), '192.0.2.1', 51001);
        const got = pair.b.received.pop();
        assert.ok(got, `B refused message with counter ${c}`);
        if (got.readUInt32BE(28) !== expect) outOfOrder++;
        expect++;
      },
      plane.egress.headroom,
    );
    assert.equal(dup, 0, 'a nonce was used twice');
    assert.equal(outOfOrder, 0, 'packets left the plane out of order');
    const stats = plane.shardStats();
    assert.equal(
      stats.reduce((t, s) => t + s.egressPackets, 0),
      N,
    );
    // Both shards did real work.
    for (const s of stats) assert.ok(s.egressPackets > N / 4, `shard ${s.shard} sealed only ${s.egressPackets}`);
    // The timers and counters on the main thread heard about the traffic.
    plane.syncCounters();
    assert.ok(pair.pa.txBytes >= N * 32);
  });

  it('4 shards, 8 flows interleaved: no flow is reordered, every nonce used once', async () => {
    await plane.close();
    plane = DataPlane.start(pair.a.device, { workers: 4, ringSlots: 1024, batchShift: 3 });
    const FLOWS = 8;
    const N = 200_000;
    // Packet i is number i / 8 of flow i % 8 (its own UDP source port), as 8 connections interleave.
    const packet = (i: number) => {
      const p = ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.alloc(64));
      p.writeUInt16BE(40000 + (i % FLOWS), 20);
      p.writeUInt32BE(Math.floor(i / FLOWS), 28);
      return p;
    };
    const next = new Array<number>(FLOWS).fill(0);
    const seen = new Set<bigint>();
    let reordered = 0;
    const b = pair.b.device;
    pair.b.received.length = 0;
    await pump(
      plane.egress,
      plane,
      N,
      packet,
      (msg) => {
        const c = counterOf(msg);
        assert.ok(!seen.has(c), `nonce ${c} used twice`);
        seen.add(c);
        b.receiveUdp(Buffer.from(msg), '192.0.2.1', 51001);
        const got = pair.b.received.pop();
        assert.ok(got, `B refused message with counter ${c}`);
        const flow = got.readUInt16BE(20) - 40000;
        const seq = got.readUInt32BE(28);
        if (seq !== next[flow]!) reordered++;
        next[flow] = seq + 1;
      },
      plane.egress.headroom,
    );
    assert.equal(reordered, 0, 'a flow left the plane out of order');
    assert.deepEqual(next, new Array<number>(FLOWS).fill(N / FLOWS));
    const stats = plane.shardStats();
    assert.equal(stats.length, 4);
    for (const s of stats) assert.ok(s.egressPackets > 0, `shard ${s.shard} sealed nothing`);
  });

  it('replay detection stays exact when shards race on the same counters', async () => {
    // B seals 20,000 packets for A; each is fed twice in a row, so the two copies land
    // on different shards at the same moment (batches of one slot alternate).
    await plane.close();
    plane = DataPlane.start(pair.a.device, { workers: SHARDS, ringSlots: 1024, batchShift: 0 });
    const N = 20_000;
    for (let i = 0; i < N; i++) pair.b.device.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', Buffer.from(`${i}`)));
    const msgs = pair.net.wire.filter((d) => d.msg[0] === 4).map((d) => d.msg);
    pair.net.queue.length = 0;
    assert.equal(msgs.length, N);
    const delivered = new Map<string, number>();
    await pump(
      plane.ingress,
      plane,
      2 * N,
      (i) => msgs[i >> 1]!,
      (p) => {
        const key = Buffer.from(p.subarray(28)).toString();
        delivered.set(key, (delivered.get(key) ?? 0) + 1);
      },
      plane.ingress.headroom,
      { from: { family: 4, port: 51002, addr: Buffer.from([192, 0, 2, 2]) } },
    );
    assert.equal(delivered.size, N);
    for (const [k, n] of delivered) assert.equal(n, 1, `packet ${k} delivered ${n} times`);
    const drops = plane.shardStats().reduce((t, s) => t + s.drops.get('replay'), 0);
    assert.equal(drops, N);
  });

  it('a shard that crashes is restarted and traffic resumes', async () => {
    const N = 60_000;
    let received = 0;
    await pump(
      plane.egress,
      plane,
      N,
      (i) => numbered(i + 1),
      () => received++,
      plane.egress.headroom,
      {
        between: (sent) => {
          if (sent === 10_000) plane.crashShard(0);
        },
      },
    );
    const s = plane.shardStats();
    assert.equal(s[0]!.restarts, 1);
    // At most the slot the dying shard held is lost.
    assert.ok(received >= N - 1, `only ${received} of ${N} packets left`);
    assert.equal(plane.egress.stats().emitted, received);
  });

  it('a full ring drops and counts; memory stays flat', async () => {
    // Nobody consumes: the ring fills, every further packet is dropped at once.
    const before = process.memoryUsage().rss;
    let accepted = 0;
    for (let i = 0; i < 200_000; i++) if (produce(plane.egress, plane.doorbell, numbered(i), plane.egress.headroom)) accepted++;
    assert.equal(accepted, 1024);
    assert.equal(plane.egress.stats().dropsFull, 200_000 - 1024);
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 64 << 20, `RSS grew by ${grown} bytes`);
    // Draining resumes normal service.
    let out = 0;
    for (let rounds = 0; out < 1024 && rounds < 100_000; rounds++) {
      out += consume(plane.egress, () => true);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(out, 1024);
    assert.equal(plane.egress.stats().emitted, 1024);
  });

  it('a keepalive is authenticated and counted but never written to the TUN (no zero-length write)', async () => {
    pair.net.wire.length = 0;
    pair.pb.sendKeepalive();
    const ka = pair.net.wire.find((d) => d.msg[0] === 4)!;
    assert.equal(ka.msg.length, 32);
    let out = 0;
    await pump(
      plane.ingress,
      plane,
      1,
      () => ka.msg,
      () => out++,
      plane.ingress.headroom,
      { from: { family: 4, port: 51002, addr: Buffer.from([192, 0, 2, 2]) } },
    );
    assert.equal(out, 0);
    assert.equal(
      plane.shardStats().reduce((t, s) => t + s.drops.total(), 0),
      0,
    );
    plane.syncCounters();
    assert.ok(pair.pa.rxBytes >= 32);
  });

  it('follows allowed-IPs changes peer by peer: a prefix moved to another peer, that peer removed, the prefix given back', async () => {
    const a = pair.a.device;
    const toB = () =>
      new Promise<number>((resolve, reject) => {
        let out = 0;
        pump(
          plane.egress,
          plane,
          10,
          (i) => numbered(i),
          () => out++,
          plane.egress.headroom,
        ).then(() => resolve(out), reject);
      });
    assert.equal(await toB(), 10);
    // A new peer C takes 10.0.0.2/32 from B (as `wg set` moves it). C has no session: the shards hand
    // those packets to the main thread, which stages them and starts a handshake with C.
    const c = a.setPeer(Buffer.alloc(32, 7), { allowedIps: [parseCidr('10.0.0.2/32')] });
    assert.equal(await toB(), 0);
    // The shards free the slots as soon as they have posted the packets; the main thread
    // stages them when it reads those messages, a turn of its event loop later.
    await until(() => c.stagedCount > 0, 'packets for the new owner staged on the main thread');
    a.removePeer(c.publicKey);
    const noRoute = () => plane.shardStats().reduce((t, s) => t + s.drops.get('no-route'), 0);
    const before = noRoute();
    assert.equal(await toB(), 0);
    assert.equal(noRoute() - before, 10);
    a.setPeer(pair.pa.publicKey, { allowedIps: [parseCidr('10.0.0.2/32')] });
    assert.equal(await toB(), 10);
  });

  it('with offloads, joins the TCP segments of a run into GSO packets that cut back into the very segments sent', async () => {
    await plane.close();
    plane = DataPlane.start(pair.a.device, { workers: SHARDS, ringSlots: 1024, batchShift: 3, vnetHdr: true });
    // B sends 40 MSS-sized segments of one flow (cut from a super-packet the way a TUN with TSO would).
    const mss = 1000;
    const payload = Buffer.alloc(40 * mss);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const big = Buffer.concat([tcpHeaders('10.0.0.2', '10.0.0.1', payload.length), payload]);
    const h = { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, gsoSize: mss, csumStart: 20, csumOffset: 16 };
    const segs = Array.from({ length: 40 }, (_, i) => {
      const out = Buffer.alloc(big.length);
      return out.subarray(0, writeSegment(big, 0, big.length, h, i, out, 0));
    });
    for (const seg of segs) pair.b.device.sendPacket(seg);
    const msgs = pair.net.wire.filter((d) => d.msg[0] === 4).map((d) => d.msg);
    pair.net.queue.length = 0;
    assert.equal(msgs.length, 40);
    const writes: Buffer[] = [];
    await pump(
      plane.ingress,
      plane,
      40,
      (i) => msgs[i]!,
      (p) => writes.push(Buffer.from(p)),
      plane.ingress.headroom,
      {
        from: { family: 4, port: 51002, addr: Buffer.from([192, 0, 2, 2]) },
      },
    );
    // Runs never cross a batch (8 slots, one shard each): at least 5 writes, far fewer than 40.
    assert.ok(writes.length >= 5 && writes.length <= 10, `${writes.length} TUN writes for 40 segments`);
    const joined = plane.shardStats().reduce((t, s) => t + s.coalescedPackets, 0);
    assert.equal(joined, 40 - writes.length);
    // What the kernel cuts them back into is exactly what B sent.
    const back: Buffer[] = [];
    for (const w of writes) {
      const vh = readVnetHeader(w, 0, { flags: 0, gsoType: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
      const pkt = w.subarray(VNET_HDR_LEN);
      for (let i = 0; i < segmentCount(pkt, 0, pkt.length, vh); i++) {
        const out = Buffer.alloc(pkt.length);
        if (vh.gsoType === VNET_GSO_NONE) back.push(Buffer.from(pkt));
        else back.push(out.subarray(0, writeSegment(pkt, 0, pkt.length, vh, i, out, 0)));
      }
    }
    assert.equal(back.length, 40);
    back.forEach((b, i) => assert.deepEqual(b, segs[i], `segment ${i}`));
  });

  it('malformed packets are dropped and counted; shards keep running', async () => {
    const junk = [Buffer.alloc(0), Buffer.from([0x45]), Buffer.alloc(40, 0xff), numbered(1).subarray(0, 30)];
    let out = 0;
    await pump(
      plane.egress,
      plane,
      junk.length,
      (i) => junk[i]!,
      () => out++,
      plane.egress.headroom,
    );
    assert.equal(out, 0);
    const garbage = [Buffer.alloc(3), Buffer.from([4, 0, 0, 0, 1, 2, 3, 4]), Buffer.alloc(200, 4), Buffer.alloc(148, 9)];
    await pump(
      plane.ingress,
      plane,
      garbage.length,
      (i) => garbage[i]!,
      () => out++,
      plane.ingress.headroom,
      {
        from: { family: 4, port: 9, addr: Buffer.from([192, 0, 2, 9]) },
      },
    );
    assert.equal(out, 0);
    const drops = plane.shardStats().reduce((t, s) => t + s.drops.total(), 0);
    assert.equal(drops, junk.length + garbage.length);
    // And real traffic still flows.
    let ok = 0;
    await pump(
      plane.egress,
      plane,
      100,
      (i) => numbered(i),
      () => ok++,
      plane.egress.headroom,
    );
    assert.equal(ok, 100);
  });
});
