// One implementation of each per-packet rule (data/packet-rules.ts), whatever
// thread runs it: the Device's library API (receiveUdp / sendPacket), the
// data plane's shard inline on the main thread (workers 0), and four worker
// shards, the last two on real TUN queues and sockets in a lab. Each placement
// gets the same packets and must deliver, send and drop the same ones,
// counted under the same reason.
import assert from 'node:assert/strict';
import { systemClock, type DropReason } from '../src/index.js';
import { ipv4Packet, linkedPair } from './fixtures/net.js';
import { A_INNER, B_INNER, INNER_PORT, RtcLab, ipv4Udp, udpIn, until } from './fixtures/rtc-lab.js';

interface Placement {
  /** What B sends A for an inner packet from `src` (B routes by destination only). */
  fromB(src: string, payload: string): Buffer;
  /** Hands one datagram from B to A's receive path; resolves with the payloads A delivered. */
  ingress(msg: Buffer): Promise<string[]>;
  /** Hands one packet to `dst` to A's send path; resolves with the payloads B opened from what A sent. */
  egress(dst: string, payload: string): Promise<string[]>;
  drops(reason: DropReason): number;
  close(): Promise<void>;
}

async function deviceApi(): Promise<Placement> {
  const pair = linkedPair({ device: { clock: systemClock } });
  // A session both ways, made on the main threads as usual (A's first data confirms B's keypair).
  pair.a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
  await pair.net.run();
  assert.equal(pair.b.received.length, 1);
  pair.net.wire.length = 0;
  const a = pair.a.device;
  return {
    fromB(src, payload) {
      const before = pair.net.wire.length;
      pair.b.device.sendPacket(ipv4Packet(src, '10.0.0.1', payload));
      const sent = pair.net.wire.slice(before).filter((d) => d.msg[0] === 4);
      assert.equal(sent.length, 1);
      return sent[0]!.msg;
    },
    ingress(msg) {
      pair.a.received.length = 0;
      a.receiveUdp(Buffer.from(msg), '192.0.2.2', 51002);
      return Promise.resolve(pair.a.received.splice(0).map((p) => p.subarray(28).toString()));
    },
    egress(dst, payload) {
      const before = pair.net.wire.length;
      a.sendPacket(ipv4Packet('10.0.0.1', dst, payload));
      pair.b.received.length = 0;
      for (const d of pair.net.wire.slice(before)) if (d.msg[0] === 4) pair.b.device.receiveUdp(d.msg, '192.0.2.1', 51001);
      return Promise.resolve(pair.b.received.splice(0).map((p) => p.subarray(28).toString()));
    },
    drops: (reason) => a.drops.get(reason),
    close: () => Promise.resolve(pair.net.close()),
  };
}

/** Every drop A counted, shards and main thread. */
function allDrops(lab: RtcLab): number {
  return lab.plane.shardStats().reduce((t, s) => t + s.drops.total(), 0) + lab.device.drops.total();
}

async function plane(workers: number): Promise<Placement> {
  const lab = await RtcLab.create(workers);
  try {
    await lab.handshake();
  } catch (err) {
    await lab.close();
    throw err;
  }
  const inbox = await udpIn(lab.a, A_INNER, INNER_PORT);
  const sender = await udpIn(lab.a, A_INNER);
  const delivered: string[] = [];
  inbox.on('message', (m) => delivered.push(m.toString()));
  const send = lab.peerB.io.sendUdp;
  /** Waits until A delivered or dropped what it was just given: every packet ends one way or the other. */
  const settled = async (before: { drops: number; n: number }, done: () => number) => {
    await until(
      () => allDrops(lab) > before.drops || done() > before.n,
      () => `A neither delivered nor dropped the packet; drops ${JSON.stringify(lab.dropsA())}`,
    );
  };
  return {
    fromB(src, payload) {
      let sealed: Buffer | null = null;
      lab.peerB.io = { ...lab.peerB.io, sendUdp: (msg) => ((sealed = Buffer.from(msg)), true) };
      try {
        lab.sendFromB(ipv4Udp(src, A_INNER, payload));
      } finally {
        lab.peerB.io = { ...lab.peerB.io, sendUdp: send };
      }
      assert.ok(sealed, 'B sealed nothing');
      return sealed;
    },
    async ingress(msg) {
      const before = { drops: allDrops(lab), n: delivered.length };
      lab.bSocket.send(msg, lab.aPort, lab.aAddress);
      await settled(before, () => delivered.length);
      return delivered.splice(before.n);
    },
    async egress(dst, payload) {
      const opened = () => lab.delivered.length;
      const before = { drops: allDrops(lab), n: opened() };
      sender.send(payload, INNER_PORT, dst);
      await settled(before, opened);
      return lab.delivered.slice(before.n).map((p) => p.subarray(28).toString());
    },
    drops: (reason) => lab.drops(reason),
    close: async () => {
      inbox.close();
      sender.close();
      await lab.close();
    },
  };
}

const PLACEMENTS: [string, () => Promise<Placement>][] = [
  ['the Device API (main thread)', deviceApi],
  ['the data plane with workers 0 (its shard inline on the main thread)', () => plane(0)],
  ['the data plane with 4 worker shards', () => plane(4)],
];

for (const [name, start] of PLACEMENTS) {
  describe(`per-packet rules on ${name}`, function () {
    this.timeout(60_000);
    let at: Placement;

    beforeEach(async () => {
      at = await start();
    });

    afterEach(async () => {
      await at.close();
    });

    it('delivers a packet from an allowed source, once: a replay is dropped and counted', async () => {
      const msg = at.fromB(B_INNER, 'allowed');
      assert.deepEqual(await at.ingress(msg), ['allowed']);
      assert.deepEqual(await at.ingress(msg), []);
      assert.equal(at.drops('replay'), 1);
    });

    it("drops and counts a packet whose source is outside the peer's allowed IPs", async () => {
      assert.deepEqual(await at.ingress(at.fromB('10.9.9.9', 'spoofed')), []);
      assert.equal(at.drops('allowed-ips'), 1);
    });

    it('drops and counts a datagram of no known type, and one naming no session', async () => {
      const junk = Buffer.alloc(48);
      junk[0] = 9;
      assert.deepEqual(await at.ingress(junk), []);
      assert.equal(at.drops('malformed'), 1);
      const stray = Buffer.from(at.fromB(B_INNER, 'stray'));
      stray.writeUInt32LE((stray.readUInt32LE(4) ^ 0x8000_0000) >>> 0, 4);
      assert.deepEqual(await at.ingress(stray), []);
      assert.equal(at.drops('unknown-receiver'), 1);
    });

    it('seals a routed packet, and drops and counts one with no route', async () => {
      assert.deepEqual(await at.egress(B_INNER, 'out'), ['out']);
      const noRoute = at.drops('no-route');
      assert.deepEqual(await at.egress('10.0.0.7', 'nowhere'), []);
      assert.equal(at.drops('no-route'), noRoute + 1);
    });
  });
}
