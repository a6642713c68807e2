// The key-proof nonces seen within their window (api/proof.ts), kept in the
// registry so that a proof captured before a restart cannot be replayed
// after it. Each claim is one IMMEDIATE transaction: expired nonces are
// pruned, the cap checked, and the nonce recorded, durably (synchronous=FULL)
// before the request it guards is served.
import type { Database, Statement } from 'better-sqlite3';

/** fresh: first use, now recorded; replayed: seen within its window; full: too many to remember. */
export type NonceClaim = 'fresh' | 'replayed' | 'full';

export interface NonceCache {
  /** Records `nonce` until `expiresMs` unless it is already recorded; `max` nonces at most. */
  claim(nonce: string, expiresMs: number, nowMs: number, max: number): NonceClaim;
}

export class NonceStore implements NonceCache {
  private readonly stmt: {
    prune: Statement<[number]>;
    count: Statement<[], { n: number }>;
    has: Statement<[string], { one: number }>;
    insert: Statement<[string, number]>;
  };

  constructor(private readonly db: Database) {
    this.stmt = {
      prune: db.prepare('DELETE FROM proof_nonces WHERE expires <= ?'),
      count: db.prepare('SELECT count(*) AS n FROM proof_nonces'),
      has: db.prepare('SELECT 1 AS one FROM proof_nonces WHERE nonce = ?'),
      insert: db.prepare('INSERT INTO proof_nonces (nonce, expires) VALUES (?, ?)'),
    };
  }

  claim(nonce: string, expiresMs: number, nowMs: number, max: number): NonceClaim {
    return this.db
      .transaction((): NonceClaim => {
        this.stmt.prune.run(nowMs);
        if (this.stmt.has.get(nonce)) return 'replayed';
        if (this.stmt.count.get()!.n >= max) return 'full';
        this.stmt.insert.run(nonce, expiresMs);
        return 'fresh';
      })
      .immediate();
  }

  /** Nonces remembered now (expired ones included until the next claim prunes them). */
  get size(): number {
    return this.stmt.count.get()!.n;
  }
}

/** In memory, for a verifier without a registry (tests, library users). */
export class MemoryNonceCache implements NonceCache {
  /** nonce -> expiry (ms); insertion order is expiry order, so the oldest are at the front. */
  private readonly seen = new Map<string, number>();

  claim(nonce: string, expiresMs: number, nowMs: number, max: number): NonceClaim {
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
