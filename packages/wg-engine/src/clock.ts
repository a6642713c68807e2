// Time for the engine. Protocol timers and key ages read a monotonic clock;
// TAI64N timestamps and "latest handshake" read the wall clock. Both come from
// one injectable Clock so tests can drive every timer path deterministically.

export interface TimerHandle {
  readonly __timer: unique symbol;
}

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch. */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // Protocol timers must not keep a process alive on their own.
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout: (h) => clearTimeout(h as unknown as NodeJS.Timeout),
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A clock that only moves when told to; timers fire in deadline order during advance(). */
export class FakeClock implements Clock {
  private t: number;
  private wallOffset: number;
  private seq = 0;
  private timers = new Map<number, FakeTimer>();

  constructor(startMs = 1_000_000, wallStartMs = Date.UTC(2026, 0, 1)) {
    this.t = startMs;
    this.wallOffset = wallStartMs - startMs;
  }

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.t + this.wallOffset;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.t + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  /** Moves time forward by ms, firing every timer that falls due on the way (including ones armed meanwhile). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const tm of this.timers.values()) {
        if (tm.at <= end && (!next || tm.at < next.at || (tm.at === next.at && tm.id < next.id))) next = tm;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Moves the wall clock alone, as an NTP step or a suspend would. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}

/**
 * A re-armable timer in the style of the kernel's mod_timer(). Moving the
 * deadline later does not touch the underlying timeout (it is re-armed for
 * the remainder when it fires), so the per-packet timer updates cost no
 * allocation.
 */
export class LazyTimer {
  private deadline = -1;
  private armedFor = -1;
  private handle: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly fn: () => void,
  ) {}

  get pending(): boolean {
    return this.deadline >= 0;
  }

  /** Arms (or re-arms) the timer to fire in ms. */
  mod(ms: number): void {
    const at = this.clock.now() + ms;
    this.deadline = at;
    if (this.handle !== null && this.armedFor <= at) return;
    this.arm(at);
  }

  del(): void {
    this.deadline = -1;
    if (this.handle !== null) {
      this.clock.clearTimeout(this.handle);
      this.handle = null;
      this.armedFor = -1;
    }
  }

  private arm(at: number): void {
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    this.armedFor = at;
    this.handle = this.clock.setTimeout(() => this.fire(), at - this.clock.now());
  }

  private fire(): void {
    this.handle = null;
    this.armedFor = -1;
    if (this.deadline < 0) return;
    if (this.deadline > this.clock.now()) {
      this.arm(this.deadline);
      return;
    }
    this.deadline = -1;
    this.fn();
  }
}
