// TCP coalescing applied to a run of ring slots: the glue between
// SlotCursor.drainRuns() and coalesceTcp() for a shard that writes to an
// offloading TUN (each emitted slot holds a virtio_net_hdr and an IP packet).
import { coalesceTcp } from './gro.js';
import { SlotField, type PacketRing } from './ring.js';

const F_OFFSET = SlotField.OFFSET >> 2;
const F_LENGTH = SlotField.LENGTH >> 2;
const F_GATHER = SlotField.GATHER >> 2;

export class SlotCoalescer {
  readonly #offs: Int32Array;
  readonly #lens: Int32Array;
  readonly #gather: Int32Array;

  /** `runSlots`: the longest run it will be given (drainRuns' runMax). */
  constructor(readonly runSlots: number) {
    this.#offs = new Int32Array(runSlots);
    this.#lens = new Int32Array(runSlots);
    this.#gather = new Int32Array(runSlots);
  }

  /**
   * Joins the TCP segments among the run's emitted slots: a head slot gets
   * GATHER (and rewritten headers), each slot it gathers keeps only its
   * payload and stops being emitted on its own (emit 0: it becomes DROP).
   * Every slot's GATHER is set, so none keeps a stale one. Returns how many
   * slots were joined.
   */
  settle(ring: PacketRing, seqs: Int32Array, emit: Uint8Array, n: number): number {
    if (n > this.runSlots) throw new RangeError(`a run of ${n} slots; this coalescer takes ${this.runSlots}`);
    const i32 = ring.i32;
    let candidates = 0;
    for (let k = 0; k < n; k++) {
      const seq = seqs[k]!;
      const w = ring.slotWord(seq);
      i32[w + F_GATHER] = 0;
      if (emit[k]) candidates++;
      this.#offs[k] = emit[k] ? ring.dataOffset(seq) + i32[w + F_OFFSET]! : 0;
      this.#lens[k] = emit[k] ? i32[w + F_LENGTH]! : 0;
    }
    if (candidates < 2) return 0;
    const joined = coalesceTcp(ring.u8, this.#offs, this.#lens, this.#gather, n);
    if (joined === 0) return 0;
    for (let k = 0; k < n; k++) {
      const g = this.#gather[k]!;
      if (g === 0) continue;
      const seq = seqs[k]!;
      const w = ring.slotWord(seq);
      if (g > 0) {
        i32[w + F_GATHER] = g;
      } else {
        emit[k] = 0;
        i32[w + F_OFFSET] = this.#offs[k]! - ring.dataOffset(seq);
        i32[w + F_LENGTH] = this.#lens[k]!;
      }
    }
    return joined;
  }
}
