// A native pump's step run on the caller's thread instead of a pump thread of
// its own: RingPoller (a reader's step) and RingEmitter (a consumer's) are
// this with one call each. It keeps a dup of its fd until close().
import { describeErrno } from './errors.js';
import { native, type NativePump } from './native.js';
import type { PumpOptions, PumpStats } from './pump.js';
import { PacketRing } from './ring.js';

export type InlineStepKind = 'tunPoller' | 'udpPoller' | 'tunEmitter' | 'udpEmitter';

export abstract class InlineStep<K extends InlineStepKind> {
  readonly kind: K;
  protected readonly native: NativePump;
  #closed = false;

  protected constructor(kind: K, fd: number, ring: PacketRing, options: PumpOptions) {
    if (!(ring instanceof PacketRing)) throw new TypeError('ring must be a PacketRing');
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`fd must be an open file descriptor, got ${fd}`);
    this.kind = kind;
    this.native = new native.RingPump(kind, fd, ring.i32, null, options);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  stats(): PumpStats {
    const { lastErrno, fatal, ...counters } = this.native.stats();
    return { ...counters, lastError: lastErrno ? describeErrno(lastErrno)[0] : undefined, fatal };
  }

  /** Closes its fd dup. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.stop();
  }
}
