// The registry in SQLite: one server, one file, so that a restart keeps
// every peer. Allocation runs in an IMMEDIATE transaction (the write lock is
// taken before the free address is looked up), so two processes sharing the
// file can never hand out one address twice; the UNIQUE constraints are the
// backstop. better-sqlite3 is synchronous: each method does its work at
// once and answers with a settled promise.
import type { Database, Statement } from 'better-sqlite3';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@wirecage/wg-engine';
import { RegistryFullError } from '../errors.js';
import { renewStep } from '../lease.js';
import { checkedOptions } from '../options.js';
import { FIRST_PEER_INDEX, type AddressPool } from '../pool.js';
import { resolvePool } from '../resolve-pool.js';
import { lowestFreeSql, newPeerRow, peerRecord, touchSql, type PeerRow } from '../rows.js';
import type { PeerRecord, Registry, RegistryOptions } from '../types.js';
import { SqliteForwardStore } from './forwards.js';
import { SqliteNonceStore } from './nonces.js';
import { openDatabase } from './open.js';
import { WriteProbe } from './writable.js';

/** $XDG_STATE_HOME/wirecagesrv/registry.db, or ~/.local/state/wirecagesrv/registry.db. */
export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'wirecagesrv', 'registry.db');
}

export class SqliteRegistry implements Registry {
  readonly maxPeers: number;
  readonly forwards: SqliteForwardStore;
  readonly nonces: SqliteNonceStore;
  readonly fleet = null;
  private readonly stmt: {
    get: Statement<[string], PeerRow>;
    list: Statement<[], PeerRow>;
    count: Statement<[], { n: number }>;
    lowestFree: Statement<[{ first: number; last: number }], { idx: number }>;
    insert: Statement<[string, number, string, string, number, number]>;
    remove: Statement<[string]>;
    renew: Statement<[number, string]>;
    touch: Statement<[{ key: string; now: number; endpoint: string | null; node: string; renewTo: number; step: number }]>;
    expired: Statement<[number], PeerRow>;
    removeExpired: Statement<[string, number]>;
  };
  private readonly probe: WriteProbe;

  private constructor(
    readonly location: string,
    readonly node: string,
    private readonly db: Database,
    readonly pool: AddressPool,
    maxPeers: number | undefined,
    readonly leaseMs: number,
  ) {
    this.nonces = new SqliteNonceStore(db);
    this.maxPeers = Math.min(maxPeers ?? pool.capacity, pool.capacity);
    this.forwards = new SqliteForwardStore(db);
    this.probe = new WriteProbe(location);
    this.stmt = {
      get: db.prepare('SELECT * FROM peers WHERE public_key = ?'),
      list: db.prepare('SELECT * FROM peers ORDER BY host_index'),
      count: db.prepare('SELECT count(*) AS n FROM peers'),
      lowestFree: db.prepare(lowestFreeSql('@first', '@last')),
      insert: db.prepare(
        'INSERT INTO peers (public_key, host_index, address4, address6, created_at, lease_expires) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      remove: db.prepare('DELETE FROM peers WHERE public_key = ?'),
      renew: db.prepare('UPDATE peers SET lease_expires = ? WHERE public_key = ?'),
      touch: db.prepare(touchSql({ key: '@key', now: '@now', endpoint: '@endpoint', node: '@node', renewTo: '@renewTo', step: '@step' })),
      expired: db.prepare('SELECT * FROM peers WHERE lease_expires <= ? ORDER BY lease_expires'),
      // Only while still expired: a re-registration since the sweep looked renewed it.
      removeExpired: db.prepare('DELETE FROM peers WHERE public_key = ? AND lease_expires <= ?'),
    };
  }

  static async open(opts: RegistryOptions): Promise<SqliteRegistry> {
    const { leaseMs, node } = checkedOptions(opts);
    const log = opts.logger ?? silentLogger;
    const db = openDatabase(opts.location, (m) => log.warn(m));
    try {
      const pool = await poolOf(db, opts);
      // Peers registered before leases existed get a whole lease from now, not an instant expiry.
      const until = Date.now() + leaseMs;
      const granted = db.prepare('UPDATE peers SET lease_expires = ? WHERE lease_expires IS NULL').run(until).changes;
      if (granted > 0) log.info(`${granted} peer(s) registered before leases get one until ${new Date(until).toISOString()}`);
      return new SqliteRegistry(opts.location, node, db, pool, opts.maxPeers, leaseMs);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  async register(publicKey: string, now = Date.now()): Promise<{ peer: PeerRecord; created: boolean }> {
    const leaseExpires = now + this.leaseMs;
    return this.db
      .transaction(() => {
        const existing = this.stmt.get.get(publicKey);
        if (existing) {
          this.stmt.renew.run(leaseExpires, publicKey);
          return { peer: peerRecord({ ...existing, lease_expires: leaseExpires }), created: false };
        }
        if (this.maxPeers < this.pool.capacity && this.stmt.count.get()!.n >= this.maxPeers) {
          throw new RegistryFullError(`the server holds its maximum of ${this.maxPeers} peers (--max-peers)`);
        }
        const idx = this.stmt.lowestFree.get({ first: FIRST_PEER_INDEX, last: this.pool.lastIndex })?.idx ?? null;
        if (idx === null || idx > this.pool.lastIndex) {
          throw new RegistryFullError(`every address of ${this.pool.subnet4.text} is taken`);
        }
        const row = newPeerRow(this.pool, publicKey, idx, now, leaseExpires);
        this.stmt.insert.run(publicKey, idx, row.address4, row.address6, now, leaseExpires);
        return { peer: peerRecord(row), created: true };
      })
      .immediate();
  }

  async get(publicKey: string): Promise<PeerRecord | undefined> {
    const r = this.stmt.get.get(publicKey);
    return r && peerRecord(r);
  }

  async list(): Promise<PeerRecord[]> {
    return this.stmt.list.all().map(peerRecord);
  }

  async count(): Promise<number> {
    return this.stmt.count.get()!.n;
  }

  async remove(publicKey: string): Promise<boolean> {
    return this.stmt.remove.run(publicKey).changes > 0;
  }

  async touch(publicKey: string, when = Date.now(), endpoint: string | null = null): Promise<void> {
    const renewTo = when + this.leaseMs;
    this.stmt.touch.run({ key: publicKey, now: when, endpoint, node: this.node, renewTo, step: renewStep(this.leaseMs) });
  }

  async expired(now = Date.now()): Promise<PeerRecord[]> {
    return this.stmt.expired.all(now).map(peerRecord);
  }

  async removeExpired(publicKey: string, now = Date.now()): Promise<boolean> {
    return this.stmt.removeExpired.run(publicKey, now).changes > 0;
  }

  async checkWritable(): Promise<void> {
    this.probe.run();
  }

  async close(): Promise<void> {
    this.probe.close();
    if (this.db.open) this.db.close();
  }
}

/** The pools, resolved in one IMMEDIATE transaction (another process may open the file at once). */
async function poolOf(db: Database, opts: RegistryOptions): Promise<AddressPool> {
  const getMeta = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM peers');
  // Nothing else uses this connection while it opens, so the transaction may span the awaits.
  db.exec('BEGIN IMMEDIATE');
  try {
    const pool = await resolvePool(
      {
        get: async (k) => getMeta.get(k)?.value,
        set: async (k, v) => void setMeta.run(k, v),
        peers: async () => count.get()!.n,
      },
      opts,
    );
    db.exec('COMMIT');
    return pool;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
