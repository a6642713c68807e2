// The registry: which public key has which tunnel addresses, kept in SQLite
// so that a restart keeps every peer. Allocation runs in an IMMEDIATE
// transaction (the write lock is taken before the free address is looked
// up), so two processes sharing the file can never hand out one address
// twice; the UNIQUE constraints are the backstop.
import type { Database, Statement } from 'better-sqlite3';
import { silentLogger, type Logger } from '@wirecage/wg-engine';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError, RegistryFullError } from './errors.js';
import { ForwardStore } from './forwards.js';
import { DEFAULT_LEASE, parseLease, renewStep } from './lease.js';
import { NonceStore } from './nonces.js';
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
  /** How long a registration lasts without renewal, in ms; default 30 days. */
  leaseMs?: number;
  /** Hears of registry files whose mode had to be set to 0600. */
  logger?: Logger;
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
  /** When the registration lapses unless renewed (re-registration, or a handshake). */
  leaseExpires: Date;
}

interface PeerRow {
  public_key: string;
  host_index: number;
  address4: string;
  address6: string;
  created_at: number;
  last_seen: number | null;
  last_endpoint: string | null;
  lease_expires: number;
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
    leaseExpires: new Date(r.lease_expires),
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
  /** Key-proof nonces seen within their window. */
  readonly nonces: NonceStore;
  /** Lease length in ms. */
  readonly leaseMs: number;
  private readonly stmt: {
    get: Statement<[string], PeerRow>;
    list: Statement<[], PeerRow>;
    count: Statement<[], { n: number }>;
    lowestFree: Statement<[{ first: number; last: number }], { idx: number }>;
    insert: Statement<[string, number, string, string, number, number]>;
    remove: Statement<[string]>;
    renew: Statement<[number, string]>;
    touch: Statement<[{ key: string; now: number; endpoint: string | null; renewTo: number; step: number }]>;
    expired: Statement<[number], PeerRow>;
    removeExpired: Statement<[string, number]>;
  };

  private constructor(
    readonly path: string,
    private readonly db: Database,
    pool: AddressPool,
    maxPeers: number | undefined,
    leaseMs: number,
  ) {
    this.pool = pool;
    this.leaseMs = leaseMs;
    this.nonces = new NonceStore(db);
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
      insert: db.prepare(
        'INSERT INTO peers (public_key, host_index, address4, address6, created_at, lease_expires) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      remove: db.prepare('DELETE FROM peers WHERE public_key = ?'),
      renew: db.prepare('UPDATE peers SET lease_expires = ? WHERE public_key = ?'),
      // The handshake's own record carries the renewal (no write of its own), and the lease moves
      // only by a whole step; a lease already run out is not revived by a handshake (the sweep removes it).
      touch: db.prepare(`
        UPDATE peers SET last_seen = @now, last_endpoint = coalesce(@endpoint, last_endpoint),
          lease_expires = CASE WHEN lease_expires > @now AND @renewTo - lease_expires >= @step THEN @renewTo ELSE lease_expires END
        WHERE public_key = @key`),
      expired: db.prepare('SELECT * FROM peers WHERE lease_expires <= ? ORDER BY lease_expires'),
      // Only while still expired: a re-registration since the sweep looked renewed it.
      removeExpired: db.prepare('DELETE FROM peers WHERE public_key = ? AND lease_expires <= ?'),
    };
  }

  static open(opts: RegistryOptions): Registry {
    if (opts.maxPeers !== undefined && (!Number.isInteger(opts.maxPeers) || opts.maxPeers < 1)) {
      throw new RegistryError(`--max-peers must be a whole number of at least 1, not ${opts.maxPeers}`);
    }
    const leaseMs = opts.leaseMs ?? parseLease(DEFAULT_LEASE);
    if (!Number.isInteger(leaseMs) || leaseMs < 1)
      throw new RegistryError(`the lease must be a positive whole number of ms, not ${opts.leaseMs}`);
    const log = opts.logger ?? silentLogger;
    const db = openDatabase(opts.path, (m) => log.warn(m));
    try {
      const pool = resolvePool(db, opts);
      // Peers registered before leases existed get a whole lease from now, not an instant expiry.
      const granted = db.prepare('UPDATE peers SET lease_expires = ? WHERE lease_expires IS NULL').run(Date.now() + leaseMs).changes;
      if (granted > 0)
        log.info(`${granted} peer(s) registered before leases get one until ${new Date(Date.now() + leaseMs).toISOString()}`);
      return new Registry(opts.path, db, pool, opts.maxPeers, leaseMs);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The peer's addresses: the ones it already has, or the lowest free pair; either way a lease of leaseMs from `now`. */
  register(publicKey: string, now = Date.now()): { peer: PeerRecord; created: boolean } {
    const leaseExpires = now + this.leaseMs;
    return this.db
      .transaction(() => {
        const existing = this.stmt.get.get(publicKey);
        if (existing) {
          this.stmt.renew.run(leaseExpires, publicKey);
          return { peer: toRecord({ ...existing, lease_expires: leaseExpires }), created: false };
        }
        if (this.maxPeers < this.pool.capacity && this.count() >= this.maxPeers) {
          throw new RegistryFullError(`the server holds its maximum of ${this.maxPeers} peers (--max-peers)`);
        }
        const idx = this.stmt.lowestFree.get({ first: FIRST_PEER_INDEX, last: this.pool.lastIndex })?.idx ?? null;
        if (idx === null || idx > this.pool.lastIndex) {
          throw new RegistryFullError(`every address of ${this.pool.subnet4.text} is taken`);
        }
        const a4 = this.pool.address4(idx);
        const a6 = this.pool.address6(idx);
        this.stmt.insert.run(publicKey, idx, a4, a6, now, leaseExpires);
        return {
          peer: {
            publicKey,
            hostIndex: idx,
            address4: a4,
            address6: a6,
            createdAt: new Date(now),
            lastSeen: null,
            lastEndpoint: null,
            leaseExpires: new Date(leaseExpires),
          },
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

  /** Records a completed handshake (and where it came from); renews the lease when that gains a renewal step. */
  touch(publicKey: string, when = Date.now(), endpoint: string | null = null): void {
    this.stmt.touch.run({ key: publicKey, now: when, endpoint, renewTo: when + this.leaseMs, step: renewStep(this.leaseMs) });
  }

  /** Peers whose lease ended at or before `now`, the oldest first. */
  expired(now = Date.now()): PeerRecord[] {
    return this.stmt.expired.all(now).map(toRecord);
  }

  /** Forgets the peer if its lease is still over at `now` (false when it was renewed, or is gone). */
  removeExpired(publicKey: string, now = Date.now()): boolean {
    return this.stmt.removeExpired.run(publicKey, now).changes > 0;
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
