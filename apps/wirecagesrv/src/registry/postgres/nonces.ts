// The key-proof nonces seen within their window, as sqlite/nonces.ts keeps
// them, shared by every node: a proof used on one node is refused on all.
// Each claim is one transaction under an advisory lock every node's claim
// takes: expired nonces are pruned, the cap checked and the nonce recorded
// (committed before the request it guards is served), so two nodes cannot
// both accept one nonce nor both take the last place under the cap.
import type pg from 'pg';
import type { NonceCache, NonceClaim } from '../types.js';
import { inTransaction, lock, LOCK } from './tx.js';

export class PostgresNonceStore implements NonceCache {
  constructor(private readonly db: pg.Pool) {}

  async claim(nonce: string, expiresMs: number, nowMs: number, max: number): Promise<NonceClaim> {
    return inTransaction(this.db, async (c): Promise<NonceClaim> => {
      await lock(c, LOCK.nonces);
      await c.query('DELETE FROM proof_nonces WHERE expires <= $1', [nowMs]);
      if ((await c.query('SELECT 1 FROM proof_nonces WHERE nonce = $1', [nonce])).rowCount) return 'replayed';
      const n = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM proof_nonces')).rows[0]!.n);
      if (n >= max) return 'full';
      await c.query('INSERT INTO proof_nonces (nonce, expires) VALUES ($1, $2)', [nonce, expiresMs]);
      return 'fresh';
    });
  }

  /** Nonces remembered now (expired ones included until the next claim prunes them). */
  async size(): Promise<number> {
    return Number((await this.db.query<{ n: string }>('SELECT count(*) AS n FROM proof_nonces')).rows[0]!.n);
  }
}
