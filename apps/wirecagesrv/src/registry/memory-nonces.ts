import type { NonceCache, NonceClaim } from './types.js';

/** Seen key-proof nonces in memory, for a verifier without a registry (tests, library users). */
export class MemoryNonceCache implements NonceCache {
  /** nonce -> expiry (ms); insertion order is expiry order, so the oldest are at the front. */
  private readonly seen = new Map<string, number>();

  async claim(nonce: string, expiresMs: number, nowMs: number, max: number): Promise<NonceClaim> {
    for (const [n, until] of this.seen) {
      if (until > nowMs) break;
      this.seen.delete(n);
    }
    if (this.seen.has(nonce)) return 'replayed';
    if (this.seen.size >= max) return 'full';
    this.seen.set(nonce, expiresMs);
    return 'fresh';
  }
}
