// One implementation of each per-packet rule (data/packet-rules.ts), whatever
// thread runs it: the Device's library API (receiveUdp / sendPacket), the
// data plane's shard inline on the main thread (workers 0), and four worker
// shards. Each placement gets the same packets and must deliver, send and
// drop the same ones, counted under the same reason.
import assert from 'node:assert/strict';
import { canProduce, consume, produce, type PacketRing } from '@wirecage/tun';
import { DataPlane } from '../src/data/plane.js';
import { systemClock, type DropReason } from '../src/index.js';
import { ipv4Packet, linkedPair, type LinkedPair } from './fixtures/net.js';

interface Placement {
  /** Hands one datagram from B to A's receive path; resolves with the IP packets A delivered. */
  ingress(msg: Buffer): Promise<Buffer[]>;
  /** Hands one IP packet to A's send path; resolves with the transport messages A sent. */
  egress(packet: Buffer): Promise<Buffer[]>;
  drops(reason: DropReason): number;
  close(): Promise<void>;
}

const FROM_B = { family: 4 as const, port: 51002, addr: Buffer.from([192, 0, 2, 2]) };

function deviceApi(pair: LinkedPair): Placement {
  const a = pair.a.device;
  return {
    ingress(msg) {
      pair.a.received.length = 0;
      a.receiveUdp(Buffer.from(msg), '192.0.2.2', 51002);
      return Promise.resolve(pair.a.received.splice(0));
    },
    egress(packet) {
      const before = pair.net.wire.length;
      a.sendPacket(packet);
      return Promise.resolve(
        pair.net.wire
          .slice(before)
          .filter((d) => d.msg[0] === 4)
          .map((d) => d.msg),
      );
    },
    drops: (reason) => a.drops.get(reason),
    close: async () => {},
  };
}

/** Puts one packet in ring and collects what the plane emits from it (nothing, when the shard dropped it). */
async function through(plane: DataPlane, ring: PacketRing, bytes: Buffer, from?: typeof FROM_B): Promise<Buffer[]> {
  assert.ok(canProduce(ring));
  assert.ok(produce(ring, plane.doorbell, bytes, undefined, from));
  const out: Buffer[] = [];
  const deadline = Date.now() + 20_000; // a worker's start on a loaded two-core machine takes seconds
  let freed = 0;
  while (freed === 0) {
    if (plane.workers === 0) plane.step();
    freed = consume(ring, (p) => {
      out.push(Buffer.from(p));
      return true;
    });
    if (freed > 0) break;
    if (Date.now() > deadline) throw new Error('the plane never finished the slot');
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

function plane(pair: LinkedPair, workers: number): Placement {
  const p = DataPlane.start(pair.a.device, { workers, ringSlots: 64, batchShift: 0 });
  const dropped = (reason: DropReason) => p.shardStats().reduce((t, s) => t + s.drops.get(reason), 0);
  return {
    ingress: (msg) => through(p, p.ingress, msg, FROM_B),
    egress: (packet) => through(p, p.egress, packet),
    drops: (reason) => dropped(reason) + pair.a.device.drops.get(reason),
    close: () => p.close(),
  };
}

const PLACEMENTS: [string, (pair: LinkedPair) => Placement][] = [
  ['the Device API (main thread)', deviceApi],
  ['the data plane with workers 0 (its shard inline on the main thread)', (pair) => plane(pair, 0)],
  ['the data plane with 4 worker shards', (pair) => plane(pair, 4)],
];

for (const [name, start] of PLACEMENTS) {
  describe(`per-packet rules on ${name}`, function () {
    this.timeout(60_000);
    let pair: LinkedPair;
    let at: Placement;

    beforeEach(async () => {
      pair = linkedPair({ device: { clock: systemClock } });
      // A session both ways, made on the main threads as usual (A's first data confirms B's keypair).
      pair.a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
      await pair.net.run();
      assert.equal(pair.b.received.length, 1);
      pair.net.wire.length = 0;
      at = start(pair);
    });

    afterEach(async () => {
      await at.close();
      pair.net.close();
    });

    /** What B sends A for an inner packet (B routes by destination only). */
    function fromB(src: string, payload = 'hi'): Buffer {
      const before = pair.net.wire.length;
      pair.b.device.sendPacket(ipv4Packet(src, '10.0.0.1', payload));
      const sent = pair.net.wire.slice(before).filter((d) => d.msg[0] === 4);
      assert.equal(sent.length, 1);
      return sent[0]!.msg;
    }

    it('delivers a packet from an allowed source, once: a replay is dropped and counted', async () => {
      const msg = fromB('10.0.0.2', 'allowed');
      const got = await at.ingress(msg);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.subarray(28).toString(), 'allowed');
      assert.equal(await at.ingress(msg).then((p) => p.length), 0);
      assert.equal(at.drops('replay'), 1);
    });

    it("drops and counts a packet whose source is outside the peer's allowed IPs", async () => {
      assert.equal((await at.ingress(fromB('10.9.9.9'))).length, 0);
      assert.equal(at.drops('allowed-ips'), 1);
    });

    it('drops and counts a datagram of no known type, and one naming no session', async () => {
      const junk = Buffer.alloc(48);
      junk[0] = 9;
      assert.equal((await at.ingress(junk)).length, 0);
      assert.equal(at.drops('malformed'), 1);
      const stray = Buffer.from(fromB('10.0.0.2'));
      stray.writeUInt32LE((stray.readUInt32LE(4) ^ 0x8000_0000) >>> 0, 4);
      assert.equal((await at.ingress(stray)).length, 0);
      assert.equal(at.drops('unknown-receiver'), 1);
    });

    it('seals a routed packet, and drops and counts one with no route or no IP header', async () => {
      const sent = await at.egress(ipv4Packet('10.0.0.1', '10.0.0.2', 'out'));
      assert.equal(sent.length, 1);
      pair.b.received.length = 0;
      pair.b.device.receiveUdp(sent[0]!, '192.0.2.1', 51001);
      assert.equal(pair.b.received[0]?.subarray(28).toString(), 'out');
      assert.equal((await at.egress(ipv4Packet('10.0.0.1', '10.7.7.7'))).length, 0);
      assert.equal(at.drops('no-route'), 1);
      assert.equal((await at.egress(Buffer.alloc(60, 0xee))).length, 0);
      assert.equal(at.drops('outgoing-malformed'), 1);
    });
  });
}
