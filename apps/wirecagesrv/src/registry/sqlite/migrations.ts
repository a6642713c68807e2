// Versioned schema of the SQLite store (postgres/migrations.ts is the same,
// version for version, in PostgreSQL's words). PRAGMA user_version holds how
// many migrations the file has had; each runs once, in order, inside the
// transaction that bumps the version, so a crash mid-migration leaves the
// previous version intact.
// Add a migration by appending to MIGRATIONS; never edit a released one.
import type { Database } from 'better-sqlite3';
import { RegistryError } from '../errors.js';

/** Marks the file as ours (PRAGMA application_id): "WCG1". */
export const APPLICATION_ID = 0x57434731;

export const MIGRATIONS: readonly string[] = [
  // 1: peers, their addresses, settings, port-forward records.
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE peers (
    public_key TEXT PRIMARY KEY,
    host_index INTEGER NOT NULL UNIQUE CHECK (host_index >= 2),
    address4 TEXT NOT NULL UNIQUE,
    address6 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_seen INTEGER
  ) STRICT;
  CREATE TABLE forwards (
    protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    public_port INTEGER NOT NULL CHECK (public_port BETWEEN 1 AND 65535),
    peer_public_key TEXT NOT NULL REFERENCES peers (public_key) ON DELETE CASCADE,
    target_port INTEGER NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (protocol, public_port)
  ) STRICT;
  CREATE INDEX forwards_by_peer ON forwards (peer_public_key);
  `,
  // 2: where each peer's last handshake came from, so a restarted server can reach out first.
  `
  ALTER TABLE peers ADD COLUMN last_endpoint TEXT;
  `,
  // 3: leases (unix ms; NULL until the registry is opened with a lease length, which fills it in),
  // and the key-proof nonces seen within their window, so a restart does not open a replay window.
  `
  ALTER TABLE peers ADD COLUMN lease_expires INTEGER;
  CREATE INDEX peers_by_lease ON peers (lease_expires);
  CREATE TABLE proof_nonces (
    nonce TEXT PRIMARY KEY,
    expires INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX proof_nonces_by_expiry ON proof_nonces (expires);
  `,
  // 4: the node holding each peer's session (its last handshake), and the nodes sharing the
  // registry with their heartbeats (a fleet on PostgreSQL; one server's SQLite file keeps them too).
  `
  ALTER TABLE peers ADD COLUMN session_node TEXT;
  CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    api TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat INTEGER NOT NULL
  ) STRICT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the schema up to SCHEMA_VERSION; refuses files from a newer wirecagesrv. */
export function migrate(db: Database, path: string): void {
  db.transaction(() => {
    // Read inside the (immediate) transaction: another process may have migrated meanwhile.
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new RegistryError(
        `the registry ${path} has schema version ${version}, newer than this wirecagesrv understands (${SCHEMA_VERSION}); run a newer wirecagesrv`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    if (version === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
    if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
