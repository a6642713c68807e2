// Receiver indices (whitepaper 5.4.2): random 32-bit numbers we hand to a
// peer so its messages name our state directly. One table maps each live
// index to the handshake or keypair it belongs to, so an incoming message is
// matched by lookup, never by trying every peer's keys.
//
// Data-plane shards must find a keypair from a receiver index without asking
// the main thread. Indices are therefore chosen so that their low bits are
// unique among live indices, and a SharedArrayBuffer maps those bits straight
// to the keypair slot: one load, no hashing, no probing. Shards confirm the
// match against the full index stored in the slot.
import { randomUint32 } from './crypto/primitives.js';

export type IndexEntry<P, K> =
  { readonly kind: 'handshake'; readonly peer: P } | { readonly kind: 'keypair'; readonly peer: P; readonly keypair: K };

/** bucket -> keypair slot + 1 (0: none). */
export class IndexSlotMap {
  readonly words: Int32Array;
  readonly mask: number;

  constructor(buckets: number, sab?: SharedArrayBuffer) {
    if (buckets & (buckets - 1)) throw new RangeError('buckets must be a power of two');
    this.words = new Int32Array(sab ?? new SharedArrayBuffer(buckets * 4));
    this.mask = buckets - 1;
  }

  get sab(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  /** The keypair slot an index may name, or -1; the caller checks the slot's own index. */
  slotOf(index: number): number {
    return Atomics.load(this.words, index & this.mask) - 1;
  }
}

/** Buckets for a table holding up to `live` indices: sparse enough that random picks rarely collide. */
export function bucketsFor(live: number): number {
  let n = 4096;
  while (n < live * 8) n *= 2;
  return n;
}

export class IndexTable<P, K extends { readonly slot: number }> {
  private readonly byBucket = new Map<number, { index: number; entry: IndexEntry<P, K> }>();
  readonly slots: IndexSlotMap;

  constructor(maxLive = 4096) {
    this.slots = new IndexSlotMap(bucketsFor(maxLive));
  }

  /** Reserves a fresh random index, unique in its low bits, for entry. */
  insert(entry: IndexEntry<P, K>): number {
    if (this.byBucket.size > this.slots.mask / 2) throw new Error('receiver index table full');
    for (;;) {
      const index = randomUint32();
      const bucket = index & this.slots.mask;
      if (!this.byBucket.has(bucket)) {
        this.byBucket.set(bucket, { index, entry });
        return index;
      }
    }
  }

  /** Points an index we already own at new state (a handshake becoming a keypair). */
  replace(index: number, entry: IndexEntry<P, K>): void {
    const bucket = index & this.slots.mask;
    const held = this.byBucket.get(bucket);
    if (held && held.index !== index) throw new Error(`receiver index ${index} collides with a live one`);
    this.byBucket.set(bucket, { index, entry });
    Atomics.store(this.slots.words, bucket, entry.kind === 'keypair' ? entry.keypair.slot + 1 : 0);
  }

  get(index: number): IndexEntry<P, K> | undefined {
    const held = this.byBucket.get(index & this.slots.mask);
    return held && held.index === index ? held.entry : undefined;
  }

  delete(index: number): void {
    const bucket = index & this.slots.mask;
    const held = this.byBucket.get(bucket);
    if (!held || held.index !== index) return;
    this.byBucket.delete(bucket);
    Atomics.store(this.slots.words, bucket, 0);
  }

  get size(): number {
    return this.byBucket.size;
  }
}
