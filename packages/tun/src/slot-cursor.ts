// The shard side of a packet ring: it claims the FILLED slots in order,
// transforms them in place and marks each EMIT or DROP.
import { PacketRing, RingCtl, SlotState } from './ring.js';

const W = (byteOffset: number): number => byteOffset >> 2;

/**
 * The shard's position in its ring. Usage:
 *
 *   const cursor = new SlotCursor(ring);
 *   for (let seq = cursor.claim(); seq !== -1; seq = cursor.claim()) {
 *     cursor.finish(seq, transformInPlace(ring, seq));   // true: EMIT, false: DROP
 *   }
 *   cursor.publish();
 *
 * or simply `cursor.drain((seq) => transformInPlace(ring, seq))`.
 *
 * The position lives in the ring (CURSOR), so a shard restarted after a crash
 * resumes where its predecessor last published; slots it finds still BUSY
 * were being transformed when that one died and become DROP, so the emitter
 * moves on.
 */
export class SlotCursor {
  readonly ring: PacketRing;
  /** Slots found BUSY from a crashed predecessor and turned into DROP. */
  recovered = 0;
  #cursor: number;
  // drainRuns()'s run, kept between calls.
  #runSeqs = new Int32Array(0);
  #runEmit = new Uint8Array(0);

  constructor(ring: PacketRing) {
    if (!(ring instanceof PacketRing)) throw new TypeError('ring must be a PacketRing');
    this.ring = ring;
    this.#cursor = Atomics.load(ring.i32, W(RingCtl.CURSOR));
  }

  /** The next seq this cursor looks at. */
  get cursor(): number {
    return this.#cursor;
  }

  /** True when the producer has published past this cursor (there may be work). */
  pending(): boolean {
    return ((this.ring.head - this.#cursor) | 0) > 0;
  }

  /** Claims (FILLED -> BUSY) the next slot and returns its seq, or -1 when none is ready. */
  claim(): number {
    const ring = this.ring;
    const i32 = ring.i32;
    const head = Atomics.load(i32, W(RingCtl.HEAD));
    let s = this.#cursor;
    while (((head - s) | 0) > 0) {
      const w = ring.slotWord(s);
      const state = Atomics.load(i32, w);
      // A slot whose SEQ is not s was already emitted and refilled: s itself is long gone.
      if (ring.storedSeq(s) === s) {
        if (state === SlotState.FILLED && Atomics.compareExchange(i32, w, SlotState.FILLED, SlotState.BUSY) === SlotState.FILLED) {
          this.#cursor = (s + 1) | 0;
          return s;
        }
        if (state === SlotState.BUSY) {
          Atomics.store(i32, w, SlotState.DROP);
          this.recovered++;
        }
      }
      s = (s + 1) | 0;
    }
    this.#cursor = s;
    return -1;
  }

  /** Marks a claimed slot EMIT (the consumer sends OFFSET/LENGTH to FAMILY/ADDR/PORT) or DROP. */
  finish(seq: number, emit: boolean): void {
    this.ring.setState(seq, emit ? SlotState.EMIT : SlotState.DROP);
  }

  /**
   * After a run of finish(): stores the cursor, where a successor resumes.
   * The emitter needs no wake-up: the shard calls it after publishing.
   */
  publish(): void {
    Atomics.store(this.ring.i32, W(RingCtl.CURSOR), this.#cursor);
  }

  /**
   * Claims, transforms and finishes every ready slot (at most
   * `max`), then publishes. `transform` returns true to emit the slot, false
   * to drop it; a throw drops the slot and is rethrown after publishing.
   * Returns the slots it finished, counting those of a crashed predecessor it
   * turned into DROP: either way they are ready for the consumer.
   */
  drain(transform: (seq: number, ring: PacketRing) => boolean, max = Infinity): number {
    const recovered = this.recovered;
    let n = 0;
    try {
      for (let seq = n < max ? this.claim() : -1; seq !== -1; seq = n < max ? this.claim() : -1) {
        let emit = false;
        try {
          emit = transform(seq, this.ring);
        } finally {
          this.finish(seq, emit);
          n++;
        }
      }
    } finally {
      this.publish();
    }
    return n + this.recovered - recovered;
  }

  /**
   * drain() a run at a time, for work that looks at several packets at once
   * (TCP coalescing): up to runMax consecutive ready slots are transformed,
   * then `settle(seqs, emit, n)` sees the run and may rewrite slots and clear
   * emit flags, then the run is finished last slot first, so a consumer that
   * finds a run's first slot done finds all of it done. A throw drops the rest
   * of the run and is rethrown after publishing. Returns what drain() does.
   */
  drainRuns(
    transform: (seq: number, ring: PacketRing) => boolean,
    settle: (seqs: Int32Array, emit: Uint8Array, n: number) => void,
    runMax = 64,
  ): number {
    const recovered = this.recovered;
    if (this.#runSeqs.length < runMax) {
      this.#runSeqs = new Int32Array(runMax);
      this.#runEmit = new Uint8Array(runMax);
    }
    const seqs = this.#runSeqs;
    const emit = this.#runEmit;
    let n = 0;
    let total = 0;
    try {
      for (let seq = this.claim(); seq !== -1; seq = this.claim()) {
        if (n > 0 && (n === runMax || seq !== ((seqs[n - 1]! + 1) | 0))) {
          const run = n;
          n = 0; // before: a settle that throws has still finished its run
          total += this.#finishRun(run, settle);
        }
        // Counted before the transform: a throw leaves it in the run, to be finished as DROP.
        seqs[n] = seq;
        emit[n++] = 0;
        emit[n - 1] = transform(seq, this.ring) ? 1 : 0;
      }
      const run = n;
      n = 0;
      total += this.#finishRun(run, settle);
    } finally {
      // After a throw: what was claimed is finished unsettled, the slot that threw as DROP.
      if (n > 0) total += this.#finishRun(n, null);
      this.publish();
    }
    return total + this.recovered - recovered;
  }

  /** Settles the run in #runSeqs/#runEmit (unless settle is null) and finishes it last slot first; returns n. */
  #finishRun(n: number, settle: ((seqs: Int32Array, emit: Uint8Array, n: number) => void) | null): number {
    const seqs = this.#runSeqs;
    const emit = this.#runEmit;
    try {
      if (settle && n > 0) settle(seqs, emit, n);
    } catch (err) {
      emit.fill(0, 0, n);
      throw err;
    } finally {
      for (let k = n - 1; k >= 0; k--) this.finish(seqs[k]!, emit[k] === 1);
    }
    return n;
  }
}
