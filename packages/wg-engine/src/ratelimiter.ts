// Per-source token buckets for handshake messages under load (the kernel's
// ratelimiter.c). Keyed by the source IPv4 address or IPv6 /64, so one
// flooding host cannot spend the handshake budget of every other peer.
import { RATELIMIT_PACKETS_BURSTABLE, RATELIMIT_PACKETS_PER_SECOND } from './constants.js';
import type { Clock } from './clock.js';

const PACKET_COST_MS = 1000 / RATELIMIT_PACKETS_PER_SECOND;
const TOKEN_MAX_MS = PACKET_COST_MS * RATELIMIT_PACKETS_BURSTABLE;
const GC_INTERVAL_MS = 1000;
const MAX_ENTRIES = 8192;

interface Bucket {
  tokens: number; // in milliseconds of credit
  last: number;
}

export class RateLimiter {
  private buckets = new Map<string, Bucket>();
  private lastGc: number;

  constructor(private readonly clock: Clock) {
    this.lastGc = clock.now();
  }

  /** Source key: the IPv4 address, or the /64 of an IPv6 address. */
  static keyOf(address: string, family: 4 | 6): string {
    if (family === 4) return address;
    const groups = expandIpv6(address);
    return groups.slice(0, 4).join(':');
  }

  allow(address: string, family: 4 | 6): boolean {
    const now = this.clock.now();
    if (now - this.lastGc >= GC_INTERVAL_MS) this.gc(now);
    const key = RateLimiter.keyOf(address, family);
    let b = this.buckets.get(key);
    if (!b) {
      // A table full of live flooders refuses newcomers rather than growing without bound.
      if (this.buckets.size >= MAX_ENTRIES) return false;
      b = { tokens: TOKEN_MAX_MS - PACKET_COST_MS, last: now };
      this.buckets.set(key, b);
      return true;
    }
    b.tokens = Math.min(TOKEN_MAX_MS, b.tokens + (now - b.last));
    b.last = now;
    if (b.tokens < PACKET_COST_MS) return false;
    b.tokens -= PACKET_COST_MS;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }

  private gc(now: number): void {
    this.lastGc = now;
    for (const [k, b] of this.buckets) if (now - b.last > GC_INTERVAL_MS) this.buckets.delete(k);
  }
}

function expandIpv6(address: string): string[] {
  const [head, tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
