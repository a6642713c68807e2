import assert from 'node:assert/strict';
import { OFFLOAD_READ_BYTES, PacketRing, SlotCursor, slotBytesFor, SlotState } from '../src/index.js';
import { consume, produce } from './ring-io.js';

const numbered = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, n, true);
  b[4] = 0xab;
  return b;
};
const numberOf = (p: Uint8Array): number => new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);

describe('packet rings (layout, slot cursor, runs)', () => {
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
    assert.ok(produce(ring, Uint8Array.of(1, 2, 3)));
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
    assert.throws(() => PacketRing.wrap(new SharedArrayBuffer(1024)), /not a packet ring/);
    assert.throws(() => new SlotCursor({} as PacketRing), /ring must be a PacketRing/);
    const ring = PacketRing.create({ capacity: 8, slotBytes: 128 });
    const again = PacketRing.wrap(ring.sab);
    assert.deepEqual([again.capacity, again.slotBytes], [8, 128]);
  });

  it('drops and counts at the producer when the shard stalls, and recovers, in sequence order', () => {
    const ring = PacketRing.create({ capacity: 64, slotBytes: 128 });
    const cursor = new SlotCursor(ring);
    let accepted = 0;
    for (let i = 0; i < 74; i++) if (produce(ring, numbered(i))) accepted++;
    assert.equal(accepted, 64);
    assert.equal(ring.stats().dropsFull, 10);
    const seen: number[] = [];
    assert.equal(
      cursor.drain(() => true),
      64,
    );
    assert.equal(
      consume(ring, (p) => (seen.push(numberOf(p)), true)),
      64,
    );
    assert.deepEqual(seen, [...Array(64).keys()]);
    assert.ok(produce(ring, numbered(1000)));
    cursor.drain(() => true);
    consume(ring, (p) => (seen.push(numberOf(p)), true));
    assert.equal(seen[64], 1000);
    assert.deepEqual(ring.stats(), { produced: 65, emitted: 65, dropsFull: 10, dropped: 0, emitErrors: 0, head: 65, tail: 65 });
  });

  it('a successor cursor resumes where the last publish left off and turns the BUSY slots it finds into DROP', () => {
    const ring = PacketRing.create({ capacity: 16, slotBytes: 128 });
    for (let i = 0; i < 8; i++) produce(ring, numbered(i));
    const dying = new SlotCursor(ring);
    assert.equal(
      dying.drain(() => true, 3),
      3,
    );
    for (let i = 0; i < 2; i++) assert.notEqual(dying.claim(), -1); // claimed, never finished or published
    const successor = new SlotCursor(ring);
    assert.equal(successor.cursor, 3);
    assert.equal(
      successor.drain(() => true),
      5,
    );
    assert.equal(successor.recovered, 2);
    assert.deepEqual(
      [...Array(8).keys()].map((s) => ring.state(s)),
      [3, 3, 3, 4, 4, 3, 3, 3].map((x) => x as SlotState),
    );
  });

  it('drainRuns settles runs of consecutive slots and finishes them last first; consume joins a gathered run', () => {
    const ring = PacketRing.create({ capacity: 16, slotBytes: 128 });
    for (let i = 0; i < 12; i++) produce(ring, numbered(i));
    const cursor = new SlotCursor(ring);
    const runs: number[][] = [];
    // Runs of at most 4: 0-3, 4-7, 8-11. In the first and the last, the second slot gathers the next two.
    const finished = cursor.drainRuns(
      () => true,
      (seqs, emit, n) => {
        runs.push([...seqs.subarray(0, n)]);
        if (seqs[0] === 4) return;
        ring.setGather(seqs[1]!, 2);
        emit[2] = 0;
        emit[3] = 0;
      },
      4,
    );
    assert.equal(finished, 12);
    assert.deepEqual(runs, [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10, 11],
    ]);
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => ring.state(s)),
      [SlotState.EMIT, SlotState.EMIT, SlotState.DROP, SlotState.DROP],
    );
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
