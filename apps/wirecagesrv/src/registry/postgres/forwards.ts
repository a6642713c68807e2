// Port-forward records in PostgreSQL, with sqlite/forwards.ts's rules: a
// public port (per protocol) belongs to one peer at most, and a peer's
// forwards go with it (ON DELETE CASCADE). add() checks and writes under an
// advisory lock that every node's add() takes, so two nodes cannot both take
// a port nor a peer more than its limit; the primary key is the backstop, and
// a peer removed meanwhile fails the foreign key, which is reported as the
// unknown peer it now is.
import pg from 'pg';
import { ForwardConflictError, ForwardLimitError } from '../forward-conflict.js';
import { forwardRecord, type ForwardRow } from '../rows.js';
import type { ForwardAddOptions, ForwardProtocol, ForwardRecord, ForwardStore } from '../types.js';
import { encodeChange, notifySql } from './notify.js';
import { inTransaction, lock, LOCK, type Querier } from './tx.js';

const unknownPeer = (key: string) => new ForwardConflictError(`no peer is registered with the key ${key}`, null);

async function countOf(q: Querier, peerPublicKey: string): Promise<number> {
  const r = await q.query<{ n: string }>('SELECT count(*) AS n FROM forwards WHERE peer_public_key = $1', [peerPublicKey]);
  return Number(r.rows[0]!.n);
}

export class PostgresForwardStore implements ForwardStore {
  constructor(
    private readonly db: pg.Pool,
    private readonly node: string,
  ) {}

  async get(protocol: ForwardProtocol, publicPort: number): Promise<ForwardRecord | undefined> {
    const r = await this.db.query<ForwardRow>('SELECT * FROM forwards WHERE protocol = $1 AND public_port = $2', [protocol, publicPort]);
    return r.rows[0] && forwardRecord(r.rows[0]);
  }

  async list(peerPublicKey?: string): Promise<ForwardRecord[]> {
    const r =
      peerPublicKey === undefined
        ? await this.db.query<ForwardRow>('SELECT * FROM forwards ORDER BY protocol, public_port')
        : await this.db.query<ForwardRow>('SELECT * FROM forwards WHERE peer_public_key = $1 ORDER BY protocol, public_port', [
            peerPublicKey,
          ]);
    return r.rows.map(forwardRecord);
  }

  count(peerPublicKey: string): Promise<number> {
    return countOf(this.db, peerPublicKey);
  }

  async add(
    f: Omit<ForwardRecord, 'createdAt'>,
    { maxPerPeer = Infinity, now = Date.now() }: ForwardAddOptions = {},
  ): Promise<ForwardRecord> {
    const change = encodeChange({ kind: 'forward-added', protocol: f.protocol, publicPort: f.publicPort, node: this.node });
    try {
      return await inTransaction(this.db, async (c) => {
        await lock(c, LOCK.forwards);
        if ((await c.query('SELECT 1 FROM peers WHERE public_key = $1', [f.peerPublicKey])).rowCount === 0)
          throw unknownPeer(f.peerPublicKey);
        const existing = await c.query<ForwardRow>('SELECT * FROM forwards WHERE protocol = $1 AND public_port = $2', [
          f.protocol,
          f.publicPort,
        ]);
        if (existing.rows[0]) {
          throw new ForwardConflictError(`${f.protocol} port ${f.publicPort} is already forwarded`, forwardRecord(existing.rows[0]));
        }
        if ((await countOf(c, f.peerPublicKey)) >= maxPerPeer) throw new ForwardLimitError(maxPerPeer);
        await c.query(
          `WITH ins AS (INSERT INTO forwards (protocol, public_port, peer_public_key, target_port, created_at)
                        VALUES ($1, $2, $3, $4, $5) RETURNING 1)
           SELECT ${notifySql('$6')} FROM ins`,
          [f.protocol, f.publicPort, f.peerPublicKey, f.targetPort, now, change],
        );
        return { ...f, createdAt: new Date(now) };
      });
    } catch (err) {
      // foreign_key_violation: the peer was removed between the check and the insert.
      if (err instanceof pg.DatabaseError && err.code === '23503') throw unknownPeer(f.peerPublicKey);
      throw err;
    }
  }

  async remove(protocol: ForwardProtocol, publicPort: number): Promise<boolean> {
    const change = encodeChange({ kind: 'forward-removed', protocol, publicPort, node: this.node });
    const r = await this.db.query(
      `WITH del AS (DELETE FROM forwards WHERE protocol = $1 AND public_port = $2 RETURNING 1) SELECT ${notifySql('$3')} FROM del`,
      [protocol, publicPort, change],
    );
    return (r.rowCount ?? 0) > 0;
  }
}
