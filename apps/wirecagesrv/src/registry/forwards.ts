// Port-forward records: which public port (per protocol) relays to which
// peer's target port. The (protocol, public_port) primary key makes a port
// belong to one peer at most; the foreign key removes a peer's forwards with
// the peer (ON DELETE CASCADE, foreign_keys is on for every connection).
import type { Database, Statement } from 'better-sqlite3';
import { RegistryError } from './errors.js';

export type ForwardProtocol = 'tcp' | 'udp';

export interface ForwardRecord {
  protocol: ForwardProtocol;
  publicPort: number;
  targetPort: number;
  peerPublicKey: string;
  createdAt: Date;
}

/** The public port is held by another forward, or the peer is unknown. */
export class ForwardConflictError extends RegistryError {
  override name = 'ForwardConflictError';
  constructor(
    message: string,
    readonly existing: ForwardRecord | null,
  ) {
    super(message);
  }
}

interface ForwardRow {
  protocol: ForwardProtocol;
  public_port: number;
  target_port: number;
  peer_public_key: string;
  created_at: number;
}

function toRecord(r: ForwardRow): ForwardRecord {
  return {
    protocol: r.protocol,
    publicPort: r.public_port,
    targetPort: r.target_port,
    peerPublicKey: r.peer_public_key,
    createdAt: new Date(r.created_at),
  };
}

export class ForwardStore {
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

  get(protocol: ForwardProtocol, publicPort: number): ForwardRecord | undefined {
    const r = this.stmt.get.get(protocol, publicPort);
    return r && toRecord(r);
  }

  /** Every forward, or one peer's. */
  list(peerPublicKey?: string): ForwardRecord[] {
    return (peerPublicKey === undefined ? this.stmt.all.all() : this.stmt.byPeer.all(peerPublicKey)).map(toRecord);
  }

  count(peerPublicKey: string): number {
    return this.stmt.countByPeer.get(peerPublicKey)!.n;
  }

  /**
   * Records a forward. Checked and written in one IMMEDIATE transaction, so
   * two processes sharing the file cannot both take a port.
   */
  add(f: Omit<ForwardRecord, 'createdAt'>, now = Date.now()): ForwardRecord {
    return this.db
      .transaction(() => {
        if (!this.stmt.peerExists.get(f.peerPublicKey)) {
          throw new ForwardConflictError(`no peer is registered with the key ${f.peerPublicKey}`, null);
        }
        const existing = this.get(f.protocol, f.publicPort);
        if (existing) throw new ForwardConflictError(`${f.protocol} port ${f.publicPort} is already forwarded`, existing);
        this.stmt.insert.run(f.protocol, f.publicPort, f.peerPublicKey, f.targetPort, now);
        return { ...f, createdAt: new Date(now) };
      })
      .immediate();
  }

  remove(protocol: ForwardProtocol, publicPort: number): boolean {
    return this.stmt.remove.run(protocol, publicPort).changes > 0;
  }
}
