// One transaction on one pooled connection: committed when `work` resolves,
// rolled back when it throws. A connection whose rollback failed too is
// broken (the server went away mid-transaction) and is destroyed, not
// returned to the pool.
import type pg from 'pg';

/** Keys of the transaction-scoped advisory locks the store takes ("WCG1" in the high half: wirecagesrv's). */
export const LOCK = {
  migrate: 0x5743473100000001n,
  register: 0x5743473100000002n,
  forwards: 0x5743473100000003n,
  nonces: 0x5743473100000004n,
} as const;

export type Querier = Pick<pg.PoolClient, 'query'>;

export async function inTransaction<T>(pool: pg.Pool, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection lost while checked out (between two queries) reports on the client, and an
  // 'error' without a listener ends the process: noted here, the next query fails, the client is destroyed.
  const lost = (e: Error) => (broken ??= e);
  client.on('error', lost);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.off('error', lost);
    client.release(broken);
  }
}

/** Waits for the advisory lock `key` until the transaction ends (bounded by lock_timeout). */
export async function lock(c: Querier, key: bigint): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock($1)', [key.toString()]);
}
