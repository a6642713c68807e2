// The word shards sleep on: one 64-byte SharedArrayBuffer shared by every ring
// a set of shards serves, so a shard waits for either direction at once.
import { futexWait, futexWake, type FutexWaitResult } from './futex.js';

const COUNTER = 0;
const SLEEPERS = 1;

export class Doorbell {
  static readonly BYTES = 64;
  readonly sab: SharedArrayBuffer;
  /** Word 0: the counter producers bump (the futex word); word 1: sleepers. */
  readonly i32: Int32Array;

  private constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < Doorbell.BYTES) {
      throw new TypeError(`a Doorbell needs a SharedArrayBuffer of ${Doorbell.BYTES} bytes`);
    }
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, 2);
  }

  static create(): Doorbell {
    return new Doorbell(new SharedArrayBuffer(Doorbell.BYTES));
  }

  static wrap(sab: SharedArrayBuffer): Doorbell {
    return new Doorbell(sab);
  }

  /** The counter; read it before looking for work, then wait(seen) if there was none. */
  value(): number {
    return Atomics.load(this.i32, COUNTER);
  }

  /** A producer published packets: bump the counter; wake sleepers only when there are any. Never blocks. */
  ring(): void {
    Atomics.add(this.i32, COUNTER, 1);
    if (Atomics.load(this.i32, SLEEPERS) > 0) futexWake(this.i32, COUNTER);
  }

  /** Wakes every sleeper (e.g. after closing rings). Never blocks. */
  wakeAll(): void {
    Atomics.add(this.i32, COUNTER, 1);
    futexWake(this.i32, COUNTER);
  }

  /**
   * Sleeps until the counter moves past `seen` (a value() read before the
   * shard found no work), at most timeoutMs. Blocks: workers only. Keep the
   * timeout bounded (e.g. 100 ms): a worker being terminated is stuck here
   * until it returns.
   */
  wait(seen: number, timeoutMs: number): FutexWaitResult {
    Atomics.add(this.i32, SLEEPERS, 1);
    try {
      return futexWait(this.i32, COUNTER, seen, timeoutMs);
    } finally {
      Atomics.sub(this.i32, SLEEPERS, 1);
    }
  }
}
