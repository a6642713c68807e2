// Versioned schema of the PostgreSQL store: sqlite/migrations.ts, version for
// version, in PostgreSQL's words (times are BIGINT unix ms, as SQLite's
// INTEGER; names, keys and constraints are the same). The table
// wirecagesrv_schema plays SQLite's PRAGMA application_id and user_version:
// its one row says whose the schema is and how many migrations it has had.
// Migrations run in the transaction that opens the registry, which holds an
// advisory lock first, so nodes starting at once migrate once, one after the
// other; and DDL is transactional here, so a failed migration leaves the
// previous version intact.
// Add a migration by appending to MIGRATIONS (and to sqlite/migrations.ts, and to catalog.ts); never edit a released one.
import { SCHEMA_VERSION as SQLITE_SCHEMA_VERSION } from '../sqlite/migrations.js';
import type { Querier } from './tx.js';

export const APPLICATION = 'wirecagesrv';

/** The table that marks a schema as ours; made before migration 1, like SQLite's header fields. */
export const SCHEMA_TABLE = `
  CREATE TABLE IF NOT EXISTS wirecagesrv_schema (
    application TEXT PRIMARY KEY,
    version INTEGER NOT NULL CHECK (version >= 0)
  )`;

export const MIGRATIONS: readonly string[] = [
  // 1: peers, their addresses, settings, port-forward records.
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE peers (
    public_key TEXT PRIMARY KEY,
    host_index BIGINT NOT NULL UNIQUE CHECK (host_index >= 2),
    address4 TEXT NOT NULL UNIQUE,
    address6 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_seen BIGINT
  );
  CREATE TABLE forwards (
    protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    public_port INTEGER NOT NULL CHECK (public_port BETWEEN 1 AND 65535),
    peer_public_key TEXT NOT NULL REFERENCES peers (public_key) ON DELETE CASCADE,
    target_port INTEGER NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (protocol, public_port)
  );
  CREATE INDEX forwards_by_peer ON forwards (peer_public_key);
  `,
  // 2: where each peer's last handshake came from.
  `
  ALTER TABLE peers ADD COLUMN last_endpoint TEXT;
  `,
  // 3: leases, and the key-proof nonces seen within their window.
  `
  ALTER TABLE peers ADD COLUMN lease_expires BIGINT;
  CREATE INDEX peers_by_lease ON peers (lease_expires);
  CREATE TABLE proof_nonces (
    nonce TEXT PRIMARY KEY,
    expires BIGINT NOT NULL
  );
  CREATE INDEX proof_nonces_by_expiry ON proof_nonces (expires);
  `,
  // 4: the node holding each peer's session, and the nodes sharing the registry with their heartbeats.
  `
  ALTER TABLE peers ADD COLUMN session_node TEXT;
  CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    api TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat BIGINT NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
if (SCHEMA_VERSION !== SQLITE_SCHEMA_VERSION) {
  throw new Error(
    `the PostgreSQL schema is at version ${SCHEMA_VERSION}, SQLite's at ${SQLITE_SCHEMA_VERSION}: both stores keep one schema`,
  );
}

/** Brings a schema at `version` (0: none yet) up to SCHEMA_VERSION, inside the caller's locked transaction. */
export async function migrate(c: Querier, version: number): Promise<void> {
  if (version === SCHEMA_VERSION) return;
  if (version === 0) {
    await c.query(SCHEMA_TABLE);
    await c.query('INSERT INTO wirecagesrv_schema (application, version) VALUES ($1, 0) ON CONFLICT DO NOTHING', [APPLICATION]);
  }
  for (let v = version; v < SCHEMA_VERSION; v++) await c.query(MIGRATIONS[v]!);
  await c.query('UPDATE wirecagesrv_schema SET version = $1 WHERE application = $2', [SCHEMA_VERSION, APPLICATION]);
}
