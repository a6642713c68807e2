// The registry in PostgreSQL: several wirecagesrv nodes on one database. The
// rules are sqlite/registry.ts's (the lowest free address, leases, one owner
// per public port); what SQLite gets from its file lock, this store gets from
// PostgreSQL: registrations take a transaction-scoped advisory lock before
// they look up the lowest free address (the UNIQUE constraints are the
// backstop), a lease expires for the one DELETE that still finds it expired,
// and every write that other nodes must apply sends its change with
// pg_notify in its own transaction (fleet.ts hears them).
//
// Plain SQL per dialect behind one interface (types.ts), not a query builder
// speaking both: the two stores differ where it matters and agree where it is
// easy. Atomicity is SQLite's IMMEDIATE transaction on one side and advisory
// locks on the other; changes ride NOTIFY, which SQLite has no counterpart
// for; the integrity checks are PRAGMAs on one side and catalog queries on
// the other. What is shared is a score of short statements, and the ones
// whose logic matters (the lowest free address, a handshake's write) are
// shared text already (rows.ts). A builder would add a dependency and a layer
// to read through without removing any of those differences. Throughput, by
// bench/registry.bench.ts: see bench/results/registry.md.
import pg from 'pg';
import { silentLogger } from '@wirecage/wg-engine';
import { RegistryError, RegistryFullError } from '../errors.js';
import { renewStep } from '../lease.js';
import { checkedOptions } from '../options.js';
import { FIRST_PEER_INDEX, type AddressPool } from '../pool.js';
import { lowestFreeSql, newPeerRow, peerRecord, touchSql, type PeerRow } from '../rows.js';
import type { PeerRecord, Registry, RegistryOptions } from '../types.js';
import { describeError, openPool, redactUrl, settingsFor, type ConnectionSettings } from './connect.js';
import { PostgresFleet } from './fleet.js';
import { PostgresForwardStore } from './forwards.js';
import { encodeChange, notifySql } from './notify.js';
import { PostgresNonceStore } from './nonces.js';
import { prepareDatabase } from './open.js';
import { inTransaction, lock, LOCK } from './tx.js';
import { WriteProbe } from './writable.js';

const INSERT_PEER = `
  WITH ins AS (INSERT INTO peers (public_key, host_index, address4, address6, created_at, lease_expires)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING 1)
  SELECT ${notifySql('$7')} FROM ins`;
const RENEW = 'UPDATE peers SET lease_expires = $1 WHERE public_key = $2 RETURNING *';
const TOUCH = touchSql({ key: '$1', now: '$2', endpoint: '$3', node: '$4', renewTo: '$5', step: '$6' });
const DELETE_NOTIFY = (where: string) => `WITH del AS (DELETE FROM peers WHERE ${where} RETURNING 1) SELECT ${notifySql('$2')} FROM del`;

export class PostgresRegistry implements Registry {
  readonly maxPeers: number;
  readonly forwards: PostgresForwardStore;
  readonly nonces: PostgresNonceStore;
  readonly fleet: PostgresFleet;
  private readonly probe: WriteProbe;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly location: string,
    readonly node: string,
    private readonly db: pg.Pool,
    settings: ConnectionSettings,
    readonly pool: AddressPool,
    maxPeers: number | undefined,
    readonly leaseMs: number,
    log: typeof silentLogger,
  ) {
    this.maxPeers = Math.min(maxPeers ?? pool.capacity, pool.capacity);
    this.forwards = new PostgresForwardStore(db, node);
    this.nonces = new PostgresNonceStore(db);
    this.fleet = new PostgresFleet(db, { connection: settings, node, log });
    this.probe = new WriteProbe(settings, node);
  }

  static async open(opts: RegistryOptions): Promise<PostgresRegistry> {
    const { leaseMs, node } = checkedOptions(opts);
    const log = opts.logger ?? silentLogger;
    const location = redactUrl(opts.location);
    const settings = settingsFor(opts.location, node);
    const db = openPool(settings, log);
    try {
      const pool = await prepareDatabase(db, { ...opts, location }, leaseMs, log);
      return new PostgresRegistry(location, node, db, settings, pool, opts.maxPeers, leaseMs, log);
    } catch (err) {
      await db.end();
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`cannot open the registry ${location}: ${describeError(err)}`, { cause: err });
    }
  }

  async register(publicKey: string, now = Date.now()): Promise<{ peer: PeerRecord; created: boolean }> {
    const leaseExpires = now + this.leaseMs;
    return inTransaction(this.db, async (c) => {
      // A known key is only renewed: no lock, no other node kept waiting.
      const known = (await c.query<PeerRow>(RENEW, [leaseExpires, publicKey])).rows[0];
      if (known) return { peer: peerRecord(known), created: false };
      await lock(c, LOCK.register);
      // Another node may have registered the key while this one waited for the lock.
      const raced = (await c.query<PeerRow>(RENEW, [leaseExpires, publicKey])).rows[0];
      if (raced) return { peer: peerRecord(raced), created: false };
      if (this.maxPeers < this.pool.capacity) {
        const n = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM peers')).rows[0]!.n);
        if (n >= this.maxPeers) throw new RegistryFullError(`the server holds its maximum of ${this.maxPeers} peers (--max-peers)`);
      }
      const free = (await c.query<{ idx: string | null }>(lowestFreeSql('$1', '$2'), [FIRST_PEER_INDEX, this.pool.lastIndex])).rows[0];
      const idx = free?.idx == null ? null : Number(free.idx);
      if (idx === null || idx > this.pool.lastIndex) throw new RegistryFullError(`every address of ${this.pool.subnet4.text} is taken`);
      const row = newPeerRow(this.pool, publicKey, idx, now, leaseExpires);
      const change = encodeChange({ kind: 'peer-added', publicKey, node: this.node });
      await c.query(INSERT_PEER, [publicKey, idx, row.address4, row.address6, now, leaseExpires, change]);
      return { peer: peerRecord(row), created: true };
    });
  }

  async get(publicKey: string): Promise<PeerRecord | undefined> {
    const r = (await this.db.query<PeerRow>('SELECT * FROM peers WHERE public_key = $1', [publicKey])).rows[0];
    return r && peerRecord(r);
  }

  async list(): Promise<PeerRecord[]> {
    return (await this.db.query<PeerRow>('SELECT * FROM peers ORDER BY host_index')).rows.map(peerRecord);
  }

  async count(): Promise<number> {
    return Number((await this.db.query<{ n: string }>('SELECT count(*) AS n FROM peers')).rows[0]!.n);
  }

  async remove(publicKey: string): Promise<boolean> {
    const change = encodeChange({ kind: 'peer-removed', publicKey, node: this.node });
    return ((await this.db.query(DELETE_NOTIFY('public_key = $1'), [publicKey, change])).rowCount ?? 0) > 0;
  }

  /** The session's node is read and written in one transaction: 'session-moved' is sent only when it changed. */
  async touch(publicKey: string, when = Date.now(), endpoint: string | null = null): Promise<void> {
    const renewTo = when + this.leaseMs;
    await inTransaction(this.db, async (c) => {
      const was = (
        await c.query<{ session_node: string | null }>('SELECT session_node FROM peers WHERE public_key = $1 FOR UPDATE', [publicKey])
      ).rows[0];
      if (!was) return;
      await c.query(TOUCH, [publicKey, when, endpoint, this.node, renewTo, renewStep(this.leaseMs)]);
      if (was.session_node !== this.node) {
        await c.query(`SELECT ${notifySql('$1')}`, [encodeChange({ kind: 'session-moved', publicKey, node: this.node })]);
      }
    });
  }

  async expired(now = Date.now()): Promise<PeerRecord[]> {
    return (await this.db.query<PeerRow>('SELECT * FROM peers WHERE lease_expires <= $1 ORDER BY lease_expires', [now])).rows.map(
      peerRecord,
    );
  }

  /** One DELETE, still conditioned on the lease: of nodes racing, the first removes it, the others find nothing. */
  async removeExpired(publicKey: string, now = Date.now()): Promise<boolean> {
    const change = encodeChange({ kind: 'peer-removed', publicKey, node: this.node });
    const r = await this.db.query(DELETE_NOTIFY('public_key = $1 AND lease_expires <= $3'), [publicKey, change, now]);
    return (r.rowCount ?? 0) > 0;
  }

  async checkWritable(): Promise<void> {
    await this.probe.run();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.fleet.close();
      await this.probe.close();
      await this.db.end();
    })();
    return this.closing;
  }
}
