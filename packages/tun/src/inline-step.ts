// One side of a packet ring on a TUN queue or UDP socket, run on the caller's
// thread (a shard's): RingPoller (fd -> free slots) and RingEmitter (finished
// slots -> fd) are this with one call each. It keeps a dup of its fd until close().
import { describeErrno, type TunError } from './errors.js';
import { native, type NativeRingStep, type NativeStepStats } from './native.js';
import { PacketRing } from './ring.js';

export type InlineStepKind = 'tunPoller' | 'udpPoller' | 'tunEmitter' | 'udpEmitter';

export interface StepOptions {
  /** Most packets per read() (TUN reads, or one recvmmsg) or per emit round (sendmmsg). 1 to 1024, default 64. */
  batch?: number;
  /** UDP emitter: send runs of same-destination, same-size slots as one UDP GSO message. Default true. */
  gso?: boolean;
  /** UDP poller: accept UDP GRO (coalesced) receives and split them into slots. Default true. */
  gro?: boolean;
}

/** A step's counters (documented on NativeStepStats), with the last errno by name. */
export interface StepStats extends Omit<NativeStepStats, 'lastErrno' | 'fatal'> {
  /** errno name of the latest failure, if any. */
  lastError: string | undefined;
  /** The error after which the fd is not used again (e.g. EBADFD: the TUN was deleted). */
  fatal: TunError | undefined;
}

export abstract class InlineStep<K extends InlineStepKind> {
  readonly kind: K;
  protected readonly native: NativeRingStep;
  #closed = false;

  protected constructor(kind: K, fd: number, ring: PacketRing, options: StepOptions) {
    if (!(ring instanceof PacketRing)) throw new TypeError('ring must be a PacketRing');
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`fd must be an open file descriptor, got ${fd}`);
    this.kind = kind;
    this.native = new native.RingStep(kind, fd, ring.i32, options);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  stats(): StepStats {
    const { lastErrno, fatal, ...counters } = this.native.stats();
    return { ...counters, lastError: lastErrno ? describeErrno(lastErrno)[0] : undefined, fatal };
  }

  /** Closes its fd dup. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.close();
  }
}
