// The registry: which public key has which tunnel addresses, kept in SQLite
// so that a restart keeps every peer. Allocation runs in an IMMEDIATE
// transaction (the write lock is taken before the free address is looked
// up), so two processes sharing the file can never hand out one address
// twice; the UNIQUE constraints are the backstop.
import type { Database, Statement } from 'better-sqlite3';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError, RegistryFullError } from './errors.js';
import { ForwardStore } from './forwards.js';
import { openDatabase } from './open.js';
import { AddressPool, FIRST_PEER_INDEX, generateUla64, parseSubnet, PoolError, type Subnet } from './pool.js';

export const DEFAULT_SUBNET = '10.200.100.0/24';

export interface RegistryOptions {
  /** The SQLite file; created with its directory (0700) if missing. */
  path: string;
  /** IPv4 pool; default: the one recorded in the file, else DEFAULT_SUBNET. */
  subnet?: string;
  /** IPv6 pool; default: the one recorded in the file, else a new random ULA /64. */
  subnet6?: string;
  /** Most peers registered at once; default: as many as the pool holds. */
  maxPeers?: number;
}

export interface PeerRecord {
  publicKey: string;
  hostIndex: number;
  address4: string;
  address6: string;
  createdAt: Date;
  /** Last completed handshake; null if none yet. */
  lastSeen: Date | null;
  /** The peer's UDP endpoint at that handshake ("192.0.2.1:51820", "[2001:db8::1]:51820"); null if none. */
  lastEndpoint: string | null;
}

interface PeerRow {
  public_key: string;
  host_index: number;
  address4: string;
  address6: string;
  created_at: number;
  last_seen: number | null;
  last_endpoint: string | null;
}

function toRecord(r: PeerRow): PeerRecord {
  return {
    publicKey: r.public_key,
    hostIndex: r.host_index,
    address4: r.address4,
    address6: r.address6,
    createdAt: new Date(r.created_at),
    lastSeen: r.last_seen === null ? null : new Date(r.last_seen),
    lastEndpoint: r.last_endpoint,
  };
}

/** $XDG_STATE_HOME/wirecagesrv/registry.db, or ~/.local/state/wirecagesrv/registry.db. */
export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'wirecagesrv', 'registry.db');
}

export class Registry {
  readonly pool: AddressPool;
  readonly maxPeers: number;
  /** Port forwards; a peer's go with it when it is removed. */
  readonly forwards: ForwardStore;
  private readonly stmt: {
    get: Statement<[string], PeerRow>;
    list: Statement<[], PeerRow>;
    count: Statement<[], { n: number }>;
    lowestFree: Statement<[{ first: number; last: number }], { idx: number }>;
    insert: Statement<[string, number, string, string, number]>;
    remove: Statement<[string]>;
    touch: Statement<[number, string | null, string]>;
  };

  private constructor(
    readonly path: string,
    private readonly db: Database,
    pool: AddressPool,
    maxPeers: number | undefined,
  ) {
    this.pool = pool;
    this.maxPeers = Math.min(maxPeers ?? pool.capacity, pool.capacity);
    this.forwards = new ForwardStore(db);
    this.stmt = {
      get: db.prepare('SELECT * FROM peers WHERE public_key = ?'),
      list: db.prepare('SELECT * FROM peers ORDER BY host_index'),
      count: db.prepare('SELECT count(*) AS n FROM peers'),
      // The first index not taken: FIRST_PEER_INDEX itself, or one past a taken index whose successor is free.
      lowestFree: db.prepare(`
        SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM peers WHERE host_index = @first) THEN @first
          ELSE (SELECT min(p.host_index + 1) FROM peers p
                WHERE p.host_index + 1 <= @last
                  AND NOT EXISTS (SELECT 1 FROM peers q WHERE q.host_index = p.host_index + 1))
        END AS idx`),
      insert: db.prepare('INSERT INTO peers (public_key, host_index, address4, address6, created_at) VALUES (?, ?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM peers WHERE public_key = ?'),
      touch: db.prepare('UPDATE peers SET last_seen = ?, last_endpoint = coalesce(?, last_endpoint) WHERE public_key = ?'),
    };
  }

  static open(opts: RegistryOptions): Registry {
    if (opts.maxPeers !== undefined && (!Number.isInteger(opts.maxPeers) || opts.maxPeers < 1)) {
      throw new RegistryError(`--max-peers must be a whole number of at least 1, not ${opts.maxPeers}`);
    }
    const db = openDatabase(opts.path);
    try {
      const pool = resolvePool(db, opts);
      return new Registry(opts.path, db, pool, opts.maxPeers);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The peer's addresses: the ones it already has, or the lowest free pair. */
  register(publicKey: string, now = Date.now()): { peer: PeerRecord; created: boolean } {
    return this.db
      .transaction(() => {
        const existing = this.stmt.get.get(publicKey);
        if (existing) return { peer: toRecord(existing), created: false };
        if (this.maxPeers < this.pool.capacity && this.count() >= this.maxPeers) {
          throw new RegistryFullError(`the server holds its maximum of ${this.maxPeers} peers (--max-peers)`);
        }
        const idx = this.stmt.lowestFree.get({ first: FIRST_PEER_INDEX, last: this.pool.lastIndex })?.idx ?? null;
        if (idx === null || idx > this.pool.lastIndex) {
          throw new RegistryFullError(`every address of ${this.pool.subnet4.text} is taken`);
        }
        const a4 = this.pool.address4(idx);
        const a6 = this.pool.address6(idx);
        this.stmt.insert.run(publicKey, idx, a4, a6, now);
        return {
          peer: { publicKey, hostIndex: idx, address4: a4, address6: a6, createdAt: new Date(now), lastSeen: null, lastEndpoint: null },
          created: true,
        };
      })
      .immediate();
  }

  get(publicKey: string): PeerRecord | undefined {
    const r = this.stmt.get.get(publicKey);
    return r && toRecord(r);
  }

  list(): PeerRecord[] {
    return this.stmt.list.all().map(toRecord);
  }

  count(): number {
    return this.stmt.count.get()!.n;
  }

  /** Forgets the peer (and its forwards); its addresses go back to the pool. */
  remove(publicKey: string): boolean {
    return this.stmt.remove.run(publicKey).changes > 0;
  }

  /** Records a completed handshake. */
  /** Records a completed handshake (and where it came from). */
  touch(publicKey: string, when = Date.now(), endpoint: string | null = null): void {
    this.stmt.touch.run(when, endpoint, publicKey);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * The pools: those recorded in the file, or given and then recorded. A given
 * subnet that differs from the recorded one is refused while peers hold
 * addresses in it, since taking it would renumber them all.
 */
function resolvePool(db: Database, opts: RegistryOptions): AddressPool {
  const getMeta = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  return db
    .transaction(() => {
      const peers = (db.prepare('SELECT count(*) AS n FROM peers').get() as { n: number }).n;
      const pick = (key: string, given: string | undefined, family: 4 | 6, flag: string, fallback: () => string): Subnet => {
        const recorded = getMeta.get(key)?.value;
        try {
          if (given === undefined) {
            const s = parseSubnet(recorded ?? fallback(), family, recorded ? `${key} recorded in ${opts.path}` : flag);
            if (!recorded) setMeta.run(key, s.text);
            return s;
          }
          const s = parseSubnet(given, family, flag);
          if (recorded !== s.text) {
            if (recorded && peers > 0) {
              throw new RegistryError(
                `${flag} ${s.text} differs from ${recorded}, recorded in ${opts.path} for its ${peers} peer(s); ` +
                  `changing it would renumber them. Leave ${flag} out (or give ${recorded}), or use another --state file.`,
              );
            }
            setMeta.run(key, s.text);
          }
          return s;
        } catch (err) {
          if (err instanceof PoolError) throw new RegistryError(err.message);
          throw err;
        }
      };
      const s4 = pick('subnet4', opts.subnet, 4, '--subnet', () => DEFAULT_SUBNET);
      const s6 = pick('subnet6', opts.subnet6, 6, '--subnet6', generateUla64);
      return new AddressPool(s4, s6);
    })
    .immediate();
}
