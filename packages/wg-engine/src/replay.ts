// The receive-side anti-replay window (whitepaper 5.4.6), RFC 6479 style as
// the Linux kernel's counter_validate() in receive.c: a ring of 32-bit blocks
// holding one bit per counter. Advancing the newest counter zeroes whole blocks
// instead of shifting bits, so the block being rotated in is never usable and
// the window is one block short of the ring.
//
// The window lives in a SharedArrayBuffer so that every decrypting thread
// checks counters of one keypair against the same state. Updates run under a
// one-word lock (Atomics.compareExchange); the critical section is a few
// dozen instructions, at most 256 word stores when the window jumps.
//
// Region layout (32-bit words):
//   0  lock    0 free, 1 held, 2 held with waiters (Drepper's futex mutex)
//   1  stalled 1 once a waiter gave up on a holder that never released
//   2  top lo  newest accepted counter + 1 (0: nothing received yet)
//   3  top hi
//   4… bitmap  BLOCKS words; bit (c mod 32) of word (c / 32 mod BLOCKS) is c
import { COUNTER_BITS_TOTAL, REJECT_AFTER_MESSAGES } from './constants.js';

const BITS_PER_BLOCK = 32;
const BLOCKS = COUNTER_BITS_TOTAL / BITS_PER_BLOCK;
const BLOCK_MASK = BLOCKS - 1;

const LOCK = 0;
const STALLED = 1;
const TOP_LO = 2;
const TOP_HI = 3;
const BITMAP = 4;

export const REPLAY_WINDOW_BYTES = (BITMAP + BLOCKS) * 4;
export const REPLAY_WINDOW_SIZE = COUNTER_BITS_TOTAL - BITS_PER_BLOCK;

const TWO_POW_32 = 2 ** 32;
// Counters below this (as top + 1) are exact doubles: the common path needs no bigint arithmetic.
const NUMBER_PATH_LIMIT = BigInt(Number.MAX_SAFE_INTEGER) - 1n;
const TOP_HI_NUMBER_LIMIT = 2 ** 21; // top < 2^53
const WINDOW_SIZE_BIG = BigInt(REPLAY_WINDOW_SIZE);
const BLOCKS_BIG = BigInt(BLOCKS);

// Spin this often before sleeping on the lock word: the holder is normally
// done within a few hundred nanoseconds.
const SPINS = 200;
// A holder that keeps the lock this long has almost certainly died inside the
// critical section (a worker terminated mid-check). Waiting forever would hang
// the data plane; failing closed only drops the packet, which is always safe.
const STALL_LIMIT_MS = 500;

if (BLOCKS & BLOCK_MASK || COUNTER_BITS_TOTAL % BITS_PER_BLOCK) {
  throw new Error('COUNTER_BITS_TOTAL must be a power of two multiple of 32');
}

export class ReplayWindow {
  private readonly lockWords: Int32Array;
  private readonly words: Uint32Array;

  /** Views REPLAY_WINDOW_BYTES of sab at byteOffset (a multiple of 8); allocates nothing. */
  constructor(sab: SharedArrayBuffer, byteOffset: number) {
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0) {
      throw new RangeError(`replay window offset ${byteOffset} must be a non-negative multiple of 8`);
    }
    if (byteOffset + REPLAY_WINDOW_BYTES > sab.byteLength) {
      throw new RangeError(`replay window at ${byteOffset} needs ${REPLAY_WINDOW_BYTES} bytes, but the buffer has ${sab.byteLength}`);
    }
    const length = REPLAY_WINDOW_BYTES / 4;
    this.lockWords = new Int32Array(sab, byteOffset, length);
    this.words = new Uint32Array(sab, byteOffset, length);
  }

  /** Forgets every counter. Only while no other thread uses this window (a fresh keypair). */
  reset(): void {
    this.words.fill(0, STALLED);
    Atomics.store(this.lockWords, STALLED, 0);
    Atomics.store(this.lockWords, LOCK, 0);
  }

  /** Validates and records counter. false = replayed, too old, or counter >= REJECT_AFTER_MESSAGES. */
  check(counter: bigint): boolean {
    if (counter < 0n || counter >= REJECT_AFTER_MESSAGES) return false;
    if (!this.lock()) return false;
    const accepted =
      counter < NUMBER_PATH_LIMIT && this.words[TOP_HI]! < TOP_HI_NUMBER_LIMIT
        ? this.record(Number(counter) + 1)
        : this.recordBig(counter + 1n);
    this.unlock();
    return accepted;
  }

  /** The update for c = counter + 1 < 2^53 and top < 2^53, in doubles (exact below 2^53). */
  private record(c: number): boolean {
    const w = this.words;
    const top = w[TOP_HI]! * TWO_POW_32 + w[TOP_LO]!;
    if (top - c > REPLAY_WINDOW_SIZE) return false;
    const block = Math.floor(c / BITS_PER_BLOCK);
    if (c > top) {
      const current = Math.floor(top / BITS_PER_BLOCK);
      const stale = Math.min(block - current, BLOCKS);
      // `& BLOCK_MASK` on a double takes it mod 2^32 first; 2^32 is a multiple of BLOCKS.
      for (let i = 1; i <= stale; i++) w[BITMAP + ((current + i) & BLOCK_MASK)] = 0;
      w[TOP_LO] = c % TWO_POW_32;
      w[TOP_HI] = Math.floor(c / TWO_POW_32);
    }
    return this.setBit(BITMAP + (block & BLOCK_MASK), 1 << (c & (BITS_PER_BLOCK - 1)));
  }

  /** The same update in bigint, for counters up to REJECT_AFTER_MESSAGES. */
  private recordBig(c: bigint): boolean {
    const w = this.words;
    const top = (BigInt(w[TOP_HI]!) << 32n) | BigInt(w[TOP_LO]!);
    if (top - c > WINDOW_SIZE_BIG) return false;
    const block = c >> 5n;
    if (c > top) {
      const current = top >> 5n;
      const stale = block - current < BLOCKS_BIG ? Number(block - current) : BLOCKS;
      const first = Number(current % BLOCKS_BIG);
      for (let i = 1; i <= stale; i++) w[BITMAP + ((first + i) & BLOCK_MASK)] = 0;
      w[TOP_LO] = Number(c & 0xffffffffn);
      w[TOP_HI] = Number(c >> 32n);
    }
    return this.setBit(BITMAP + Number(block % BLOCKS_BIG), 1 << Number(c & 31n));
  }

  private setBit(index: number, bit: number): boolean {
    const old = this.words[index]!;
    if (old & bit) return false;
    this.words[index] = old | bit;
    return true;
  }

  private lock(): boolean {
    return Atomics.compareExchange(this.lockWords, LOCK, 0, 1) === 0 || this.lockContended();
  }

  private lockContended(): boolean {
    const l = this.lockWords;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(l, LOCK) === 0 && Atomics.compareExchange(l, LOCK, 0, 1) === 0) return true;
    }
    if (Atomics.load(l, STALLED) !== 0) return false;
    // Mark the lock contended (2) so the holder's unlock wakes us, then sleep.
    let deadline = 0;
    while (Atomics.exchange(l, LOCK, 2) !== 0) {
      const now = performance.now();
      if (deadline === 0) deadline = now + STALL_LIMIT_MS;
      else if (now >= deadline) {
        Atomics.store(l, STALLED, 1);
        return false;
      }
      Atomics.wait(l, LOCK, 2, deadline - now);
    }
    return true;
  }

  private unlock(): void {
    const l = this.lockWords;
    // A slow holder that was taken for dead has now proven otherwise.
    if (Atomics.load(l, STALLED) !== 0) Atomics.store(l, STALLED, 0);
    if (Atomics.exchange(l, LOCK, 0) === 2) Atomics.notify(l, LOCK, 1);
  }
}
