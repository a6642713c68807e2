// Per-source token buckets, so one flooding host cannot spend every other
// host's budget. Sources are IPv4 addresses or IPv6 /64s (one host usually
// owns a whole /64). Two users share this one rule with their own numbers:
// the engine's handshakes under load (the defaults: the kernel's
// ratelimiter.c) and wirecagesrv's API per client address.
import { isIPv4, isIPv6 } from 'node:net';
import { RATELIMIT_PACKETS_BURSTABLE, RATELIMIT_PACKETS_PER_SECOND } from './constants.js';

export interface RateLimitOptions {
  /** Takes allowed at once. Default 5 (handshakes, as the kernel). */
  burst?: number;
  /** Takes regained per minute. Default 1200 (20 a second, as the kernel). */
  perMinute?: number;
  /** Sources tracked at most. Default 8192 (the kernel's table). */
  maxSources?: number;
  /**
   * A new source while maxSources busy ones are tracked: 'refuse' it (the
   * kernel: spoofed UDP sources cannot flush the buckets of live ones), or
   * 'forget-oldest' (an API whose clients are real TCP peers: a new client is
   * never locked out). Default 'refuse'.
   */
  whenFull?: 'refuse' | 'forget-oldest';
  /** Monotonic milliseconds; default performance.now. Called as a method, so an engine Clock is options enough. */
  now?: () => number;
}

interface Bucket {
  credit: number; // milliseconds of refill; one take costs costMs
  last: number;
}

// Idle buckets are swept at most this often, and never sooner than this after
// their last use (as the kernel's gc).
const GC_INTERVAL_MS = 1000;

export class RateLimiter {
  private readonly costMs: number;
  private readonly maxCredit: number;
  /** A bucket idle this long is full again: forgetting it changes nothing. */
  private readonly forgetAfterMs: number;
  private readonly maxSources: number;
  private readonly refuseWhenFull: boolean;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();
  private lastGc: number;

  /** The bucket a source address spends from: the IPv4 address (also IPv4-mapped), or the IPv6 /64. */
  static sourceKey(this: void, address: string): string {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return mapped[1]!;
    if (isIPv4(address) || !isIPv6(address)) return address;
    // The first four groups of the full form: the /64.
    const [head, tail = ''] = address.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
    return `${groups
      .slice(0, 4)
      .map((g) => parseInt(g, 16).toString(16))
      .join(':')}::/64`;
  }

  constructor(opts: RateLimitOptions = {}) {
    const burst = opts.burst ?? RATELIMIT_PACKETS_BURSTABLE;
    const perMinute = opts.perMinute ?? RATELIMIT_PACKETS_PER_SECOND * 60;
    if (!(burst >= 1) || !(perMinute > 0))
      throw new RangeError(`a rate limit needs a burst >= 1 and a rate > 0, got burst ${burst}, ${perMinute} a minute`);
    this.costMs = 60_000 / perMinute;
    this.maxCredit = this.costMs * burst;
    this.forgetAfterMs = Math.max(GC_INTERVAL_MS, this.maxCredit);
    this.maxSources = opts.maxSources ?? 8192;
    this.refuseWhenFull = (opts.whenFull ?? 'refuse') === 'refuse';
    this.now = opts.now ? () => opts.now!() : () => performance.now();
    this.lastGc = this.now();
  }

  /** Takes one from the source's bucket: 0 if allowed, else the milliseconds until a take would be. */
  take(address: string): number {
    const now = this.now();
    if (now - this.lastGc >= GC_INTERVAL_MS) this.sweep(now);
    const key = RateLimiter.sourceKey(address);
    let b = this.buckets.get(key);
    if (b) {
      b.credit = Math.min(this.maxCredit, b.credit + (now - b.last));
      b.last = now;
    } else {
      if (this.buckets.size >= this.maxSources && !this.makeRoom(now)) return this.costMs;
      b = { credit: this.maxCredit, last: now };
      this.buckets.set(key, b);
    }
    if (b.credit < this.costMs) return this.costMs - b.credit;
    b.credit -= this.costMs;
    return 0;
  }

  /** take() === 0. */
  allow(address: string): boolean {
    return this.take(address) === 0;
  }

  get size(): number {
    return this.buckets.size;
  }

  private makeRoom(now: number): boolean {
    this.sweep(now);
    if (this.buckets.size < this.maxSources) return true;
    if (this.refuseWhenFull) return false;
    // Map order is insertion order: the source first seen longest ago.
    this.buckets.delete(this.buckets.keys().next().value as string);
    return true;
  }

  private sweep(now: number): void {
    this.lastGc = now;
    for (const [k, b] of this.buckets) if (now - b.last > this.forgetAfterMs) this.buckets.delete(k);
  }
}
