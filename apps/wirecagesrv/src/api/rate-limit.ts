// Registration attempts per source: a token bucket per IPv4 address or IPv6
// /64 (one host usually owns a whole /64), so guessing the token or draining
// the pool is slow, while one client retrying is not hurt. Failed and
// successful attempts count alike.
import { isIPv4, isIPv6 } from 'node:net';

export interface RateLimitOptions {
  /** Attempts allowed at once. Default 10. */
  burst?: number;
  /** Attempts regained per minute. Default 10. */
  perMinute?: number;
  /** Sources tracked at most; full buckets are forgotten first. Default 65536. */
  maxSources?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address) || !isIPv6(address)) return address;
  // The first four groups of the full form: the /64.
  const [head, tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

export class RateLimiter {
  private readonly burst: number;
  private readonly perMs: number;
  private readonly maxSources: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: RateLimitOptions = {}) {
    this.burst = opts.burst ?? 10;
    this.perMs = (opts.perMinute ?? 10) / 60_000;
    this.maxSources = opts.maxSources ?? 65536;
    this.now = opts.now ?? Date.now;
  }

  /** Takes one attempt; returns 0 if allowed, else the seconds until one is. */
  take(address: string): number {
    const key = sourceKey(address);
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
      b.at = now;
    } else {
      if (this.buckets.size >= this.maxSources) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(k);
    }
    // Still full of busy sources: forget the oldest rather than grow without bound.
    while (this.buckets.size >= this.maxSources) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
  }
}
