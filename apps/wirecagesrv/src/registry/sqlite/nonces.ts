// The key-proof nonces seen within their window (api/proof.ts), kept in the
// registry so that a proof captured before a restart cannot be replayed
// after it. Each claim is one IMMEDIATE transaction: expired nonces are
// pruned, the cap checked, and the nonce recorded, durably (synchronous=FULL)
// before the request it guards is served.
import type { Database, Statement } from 'better-sqlite3';
import type { NonceCache, NonceClaim } from '../types.js';

export class SqliteNonceStore implements NonceCache {
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

  async claim(nonce: string, expiresMs: number, nowMs: number, max: number): Promise<NonceClaim> {
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
  async size(): Promise<number> {
    return this.stmt.count.get()!.n;
  }
}
