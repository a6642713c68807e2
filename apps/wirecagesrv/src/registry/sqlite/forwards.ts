// Port-forward records in SQLite: which public port (per protocol) relays to
// which peer's target port. The (protocol, public_port) primary key makes a
// port belong to one peer at most; the foreign key removes a peer's forwards
// with the peer (ON DELETE CASCADE, foreign_keys is on for every connection).
import type { Database, Statement } from 'better-sqlite3';
import { ForwardConflictError, ForwardLimitError } from '../forward-conflict.js';
import { forwardRecord, type ForwardRow } from '../rows.js';
import type { ForwardAddOptions, ForwardProtocol, ForwardRecord, ForwardStore } from '../types.js';

export class SqliteForwardStore implements ForwardStore {
  private readonly stmt: {
    get: Statement<[string, number], ForwardRow>;
    all: Statement<[], ForwardRow>;
    byPeer: Statement<[string], ForwardRow>;
    countByPeer: Statement<[string], { n: number }>;
    peerExists: Statement<[string], { one: number }>;
    insert: Statement<[string, number, string, number, number]>;
    remove: Statement<[string, number]>;
  };

  constructor(private readonly db: Database) {
    this.stmt = {
      get: db.prepare('SELECT * FROM forwards WHERE protocol = ? AND public_port = ?'),
      all: db.prepare('SELECT * FROM forwards ORDER BY protocol, public_port'),
      byPeer: db.prepare('SELECT * FROM forwards WHERE peer_public_key = ? ORDER BY protocol, public_port'),
      countByPeer: db.prepare('SELECT count(*) AS n FROM forwards WHERE peer_public_key = ?'),
      peerExists: db.prepare('SELECT 1 AS one FROM peers WHERE public_key = ?'),
      insert: db.prepare('INSERT INTO forwards (protocol, public_port, peer_public_key, target_port, created_at) VALUES (?, ?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM forwards WHERE protocol = ? AND public_port = ?'),
    };
  }

  async get(protocol: ForwardProtocol, publicPort: number): Promise<ForwardRecord | undefined> {
    const r = this.stmt.get.get(protocol, publicPort);
    return r && forwardRecord(r);
  }

  async list(peerPublicKey?: string): Promise<ForwardRecord[]> {
    return (peerPublicKey === undefined ? this.stmt.all.all() : this.stmt.byPeer.all(peerPublicKey)).map(forwardRecord);
  }

  async count(peerPublicKey: string): Promise<number> {
    return this.stmt.countByPeer.get(peerPublicKey)!.n;
  }

  /** Checked and written in one IMMEDIATE transaction, so two requests or processes cannot both take a port or exceed the limit. */
  async add(
    f: Omit<ForwardRecord, 'createdAt'>,
    { maxPerPeer = Infinity, now = Date.now() }: ForwardAddOptions = {},
  ): Promise<ForwardRecord> {
    return this.db
      .transaction(() => {
        if (!this.stmt.peerExists.get(f.peerPublicKey)) {
          throw new ForwardConflictError(`no peer is registered with the key ${f.peerPublicKey}`, null);
        }
        const existing = this.stmt.get.get(f.protocol, f.publicPort);
        if (existing) throw new ForwardConflictError(`${f.protocol} port ${f.publicPort} is already forwarded`, forwardRecord(existing));
        if (this.stmt.countByPeer.get(f.peerPublicKey)!.n >= maxPerPeer) throw new ForwardLimitError(maxPerPeer);
        this.stmt.insert.run(f.protocol, f.publicPort, f.peerPublicKey, f.targetPort, now);
        return { ...f, createdAt: new Date(now) };
      })
      .immediate();
  }

  async remove(protocol: ForwardProtocol, publicPort: number): Promise<boolean> {
    return this.stmt.remove.run(protocol, publicPort).changes > 0;
  }
}
