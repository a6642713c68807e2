import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import {
  canProduce,
  consume,
  Doorbell,
  OFFLOAD_READ_BYTES,
  PacketRing,
  produce,
  ShardLane,
  slotBytesFor,
  SlotState,
} from '../src/index.js';
import type { ShardWorkerData } from './fixtures/shard-worker.js';
import { startWorker, type TestWorker } from './workers.js';

type ShardResult = { processed: number; recovered: number };

function shard(
  ring: PacketRing,
  doorbell: Doorbell,
  lane: number,
  mode: ShardWorkerData['mode'] = 'identity',
  crashAfter?: number,
): TestWorker<ShardResult> {
  const data: ShardWorkerData = { ring: ring.sab, doorbell: doorbell.sab, lane, mode, ...(crashAfter && { crashAfter }) };
  return startWorker<ShardResult>('shard-worker.ts', data);
}

const numbered = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, n, true);
  b[4] = 0xab;
  return b;
};
const numberOf = (p: Uint8Array): number => new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);

/** Consumes until `until()` holds, collecting packet numbers; the main thread never blocks. */
async function consumeUntil(ring: PacketRing, seen: number[], until: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!until()) {
    if (Date.now() > deadline) throw new Error(`consumer saw ${seen.length} packets before the deadline`);
    if (consume(ring, (p) => (seen.push(numberOf(p)), true)) === 0) await tick();
  }
}

describe('packet rings (JS producer/consumer, worker shards)', () => {
  it("sizes slots for a packet and the caller's headroom and tailroom, in 64-byte steps", () => {
    assert.equal(slotBytesFor(1500), 64 + 1536);
    assert.equal(slotBytesFor(1420, { headroom: 16, tailroom: 100 }), 64 + 1536);
    assert.equal(slotBytesFor(1420, { headroom: 16, tailroom: 101 }), 64 + 1600);
    assert.equal(slotBytesFor(1), 64 + 64);
    assert.equal(slotBytesFor(OFFLOAD_READ_BYTES), 64 + 65600);
    assert.throws(() => slotBytesFor(0), /packetBytes must be 1 to 65545, got 0/);
    assert.throws(() => slotBytesFor(OFFLOAD_READ_BYTES + 1), RangeError);
    assert.throws(() => slotBytesFor(1420, { headroom: -1 }), /headroom must be/);
    assert.throws(() => slotBytesFor(1420, { tailroom: 1.5 }), /tailroom must be/);
  });

  it("keeps the creator's headroom in the ring, where produce() stores packets by default", () => {
    const ring = PacketRing.create({ capacity: 4, slotBytes: slotBytesFor(100, { headroom: 48 }), headroom: 48 });
    assert.equal(PacketRing.wrap(ring.sab).headroom, 48);
    assert.ok(produce(ring, null, Uint8Array.of(1, 2, 3)));
    assert.deepEqual([ring.offset(0), [...ring.packet(0)]], [48, [1, 2, 3]]);
    assert.equal(PacketRing.create({ capacity: 4, slotBytes: 128 }).headroom, 0);
    assert.throws(
      () => PacketRing.create({ capacity: 4, slotBytes: 128, headroom: 64 }),
      /headroom must be 0 to 63 bytes for 128-byte slots, got 64/,
    );
    assert.throws(() => PacketRing.create({ capacity: 4, slotBytes: 128, headroom: -1 }), /headroom/);
  });

  it('refuses bad layouts and foreign buffers', () => {
    assert.throws(() => PacketRing.create({ capacity: 1000, slotBytes: 128 }), /power of two/);
    assert.throws(() => PacketRing.create({ capacity: 8, slotBytes: 100 }), /multiple of 64/);
    assert.throws(() => PacketRing.create({ capacity: 8, slotBytes: 128, lanes: 9 }), /lanes/);
    assert.throws(() => PacketRing.wrap(new SharedArrayBuffer(1024)), /not a packet ring/);
    const ring = PacketRing.create({ capacity: 8, slotBytes: 128, lanes: 2, batchShift: 1 });
    const again = PacketRing.wrap(ring.sab);
    assert.deepEqual([again.capacity, again.slotBytes, again.lanes, again.batchShift], [8, 128, 2, 1]);
  });

  it('carries 200,000 packets through 2 shards in exact sequence order', async () => {
    const ring = PacketRing.create({ capacity: 1024, slotBytes: 128, lanes: 2, batchShift: 4 });
    const doorbell = Doorbell.create();
    const shards = [shard(ring, doorbell, 0), shard(ring, doorbell, 1)];
    try {
      await Promise.all(shards.map((s) => s.ready));
      const total = 200_000;
      const seen: number[] = [];
      let sent = 0;
      while (seen.length < total) {
        let burst = 0;
        while (sent < total && burst < 256 && canProduce(ring)) {
          assert.ok(produce(ring, null, numbered(sent)));
          sent++;
          burst++;
        }
        if (burst > 0) doorbell.ring();
        if (consume(ring, (p) => (seen.push(numberOf(p)), true)) === 0 && burst === 0) await tick();
      }
      for (let i = 0; i < total; i++) if (seen[i] !== i) assert.fail(`packet ${i} arrived as ${seen[i]}`);
      assert.deepEqual(ring.stats(), {
        produced: total,
        emitted: total,
        dropsFull: 0,
        dropped: 0,
        emitErrors: 0,
        head: total,
        tail: total,
      });
    } finally {
      ring.close(doorbell);
    }
    const results = await Promise.all(shards.map((s) => s.result));
    assert.equal(results[0]!.processed + results[1]!.processed, 200_000);
    assert.ok(
      results.every((r) => r.processed > 50_000),
      JSON.stringify(results),
    );
    assert.deepEqual(await Promise.all(shards.map((s) => s.exited)), [0, 0]);
  });

  it('drops and counts at the producer when the consumer stalls, and recovers', async () => {
    const ring = PacketRing.create({ capacity: 64, slotBytes: 128, lanes: 1 });
    const doorbell = Doorbell.create();
    const s = shard(ring, doorbell, 0);
    try {
      await s.ready;
      let accepted = 0;
      for (let i = 0; i < 74; i++) if (produce(ring, doorbell, numbered(i))) accepted++;
      assert.equal(accepted, 64);
      assert.equal(ring.stats().dropsFull, 10);
      const seen: number[] = [];
      await consumeUntil(ring, seen, () => seen.length === 64);
      assert.deepEqual(seen, [...Array(64).keys()]);
      assert.ok(produce(ring, doorbell, numbered(1000)));
      await consumeUntil(ring, seen, () => seen.length === 65);
      assert.equal(seen[64], 1000);
      assert.deepEqual(ring.stats(), { produced: 65, emitted: 65, dropsFull: 10, dropped: 0, emitErrors: 0, head: 65, tail: 65 });
    } finally {
      ring.close(doorbell);
    }
    assert.equal(await s.exited, 0);
  });

  it('turns the BUSY slots of a crashed shard into DROP when a shard restarts on its lane', async () => {
    const ring = PacketRing.create({ capacity: 256, slotBytes: 128, lanes: 2, batchShift: 4 });
    const doorbell = Doorbell.create();
    const lane0 = shard(ring, doorbell, 0);
    let lane1: TestWorker<ShardResult> | undefined;
    try {
      await lane0.ready;
      for (let i = 0; i < 64; i++) assert.ok(produce(ring, doorbell, numbered(i)));
      // Lane 1 owns seqs 16-31 and 48-63; the crashing shard takes 16, 17, 18 and dies.
      const crashed = shard(ring, doorbell, 1, 'crash', 3);
      assert.equal(await crashed.exited, 3);
      assert.deepEqual(
        [16, 17, 18].map((s) => ring.state(s)),
        [SlotState.BUSY, SlotState.BUSY, SlotState.BUSY],
      );
      const seen: number[] = [];
      await consumeUntil(ring, seen, () => seen.length === 16);
      await new Promise((r) => setTimeout(r, 50));
      consume(ring, (p) => (seen.push(numberOf(p)), true));
      assert.equal(seen.length, 16, 'the consumer waits at the first BUSY slot');

      lane1 = shard(ring, doorbell, 1);
      await lane1.ready;
      await consumeUntil(ring, seen, () => seen.length === 61);
      const expected = [...Array(64).keys()].filter((n) => n < 16 || n > 18);
      assert.deepEqual(seen, expected);
      for (let i = 64; i < 164; i++) assert.ok(produce(ring, doorbell, numbered(i)));
      await consumeUntil(ring, seen, () => seen.length === 161);
      assert.deepEqual(
        seen.slice(61),
        [...Array(100).keys()].map((n) => n + 64),
      );
      const stats = ring.stats();
      assert.equal(stats.dropped, 3);
      assert.equal(stats.emitted, 161);
    } finally {
      ring.close(doorbell);
    }
    const r = await lane1.result;
    assert.equal(r.recovered, 3);
  });

  it('wakes sleeping shards when the ring is closed', async () => {
    const ring = PacketRing.create({ capacity: 16, slotBytes: 128 });
    const doorbell = Doorbell.create();
    const sleepers = [0, 1].map(() =>
      startWorker<{ ms: number; closed: boolean }>('sleeper-worker.ts', { ring: ring.sab, doorbell: doorbell.sab }),
    );
    await Promise.all(sleepers.map((s) => s.ready));
    // Give both time to be inside the futex; they sleep up to 10 s otherwise.
    await new Promise((r) => setTimeout(r, 100));
    ring.close(doorbell);
    for (const s of sleepers) {
      const { ms, closed } = await s.result;
      assert.equal(closed, true);
      assert.ok(ms < 2000, `slept ${ms} ms after close`);
    }
  });

  it('lets a JS shard claim only its own lane, in order', () => {
    const ring = PacketRing.create({ capacity: 16, slotBytes: 128, lanes: 2, batchShift: 2 });
    for (let i = 0; i < 12; i++) produce(ring, null, numbered(i));
    const lane1 = new ShardLane(ring, 1);
    const claimed: number[] = [];
    for (let s = lane1.claim(); s !== -1; s = lane1.claim()) {
      claimed.push(s);
      lane1.finish(s, s % 2 === 0);
    }
    lane1.publish();
    assert.deepEqual(claimed, [4, 5, 6, 7]);
    assert.equal(lane1.cursor, 12);
    assert.equal(
      consume(ring, () => true),
      0,
      'lane 0 has not finished seq 0 yet',
    );
    const lane0 = new ShardLane(ring, 0);
    assert.equal(
      lane0.drain(() => true),
      8,
    );
    const out: number[] = [];
    assert.equal(
      consume(ring, (p) => (out.push(numberOf(p)), true)),
      12,
    );
    assert.deepEqual(out, [0, 1, 2, 3, 4, 6, 8, 9, 10, 11]);
    assert.equal(ring.stats().dropped, 2);
    assert.throws(() => new ShardLane(ring, 2), RangeError);
  });

  it('drainRuns settles runs of consecutive slots and finishes them last first; consume joins a gathered run', () => {
    const ring = PacketRing.create({ capacity: 16, slotBytes: 128, lanes: 2, batchShift: 2 });
    for (let i = 0; i < 12; i++) produce(ring, null, numbered(i));
    const lane0 = new ShardLane(ring, 0);
    const runs: number[][] = [];
    // Lane 0 owns 0-3 and 8-11: two runs. In each, the second slot gathers the next two.
    const finished = lane0.drainRuns(
      () => true,
      (seqs, emit, n) => {
        runs.push([...seqs.subarray(0, n)]);
        ring.setGather(seqs[1]!, 2);
        emit[2] = 0;
        emit[3] = 0;
      },
      8,
    );
    assert.equal(finished, 8);
    assert.deepEqual(runs, [
      [0, 1, 2, 3],
      [8, 9, 10, 11],
    ]);
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => ring.state(s)),
      [SlotState.EMIT, SlotState.EMIT, SlotState.DROP, SlotState.DROP],
    );
    new ShardLane(ring, 1).drain(() => true);
    const out: number[][] = [];
    assert.equal(
      consume(ring, (p) => (out.push([numberOf(p), p.length]), true)),
      12,
    );
    // A gathered run arrives as one packet: its slots' bytes one after the other.
    assert.deepEqual(out, [
      [0, 8],
      [1, 24],
      [4, 8],
      [5, 8],
      [6, 8],
      [7, 8],
      [8, 8],
      [9, 24],
    ]);
    assert.deepEqual([ring.stats().emitted, ring.stats().dropped], [12, 0]);
  });
});
