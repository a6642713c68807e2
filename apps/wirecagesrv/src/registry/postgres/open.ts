// Opening the database as our registry, in one transaction under an advisory
// lock (nodes starting at once take turns): refuse a schema of another
// program or of a newer wirecagesrv, migrate, check the catalog (and the
// indexes, where amcheck is installed), resolve the pools, and give peers
// from before leases a lease. Any refusal rolls all of it back: the database
// is left exactly as it was, as sqlite/open.ts leaves a file it refuses.
import type pg from 'pg';
import type { Logger } from '@wirecage/wg-engine';
import type { AddressPool } from '../pool.js';
import { resolvePool } from '../resolve-pool.js';
import type { RegistryOptions } from '../types.js';
import { checkCatalog, checkIndexes, schemaVersion } from './checks.js';
import { migrate, SCHEMA_VERSION } from './migrations.js';
import { inTransaction, lock, LOCK, type Querier } from './tx.js';

const OPEN_TIMEOUT_MS = 120_000;

function metaOf(c: Querier): Parameters<typeof resolvePool>[0] {
  return {
    get: async (k) => (await c.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [k])).rows[0]?.value,
    set: async (k, v) =>
      void (await c.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [k, v])),
    peers: async () => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM peers')).rows[0]!.n),
  };
}

export async function prepareDatabase(
  db: pg.Pool,
  opts: RegistryOptions & { location: string },
  leaseMs: number,
  log: Logger,
): Promise<AddressPool> {
  return inTransaction(db, async (c) => {
    // Longer bounds than a request's: amcheck reads every index, and other nodes may be opening first.
    await c.query(`SET LOCAL statement_timeout = ${OPEN_TIMEOUT_MS}; SET LOCAL lock_timeout = ${OPEN_TIMEOUT_MS}`);
    await lock(c, LOCK.migrate);
    const version = await schemaVersion(c, opts.location);
    await migrate(c, version);
    await checkCatalog(c, opts.location);
    const indexes = await checkIndexes(c, opts.location);
    const migrated = version === SCHEMA_VERSION ? '' : `, migrated from version ${version}`;
    log.info(`registry ${opts.location}: schema version ${SCHEMA_VERSION}${migrated}; its catalog is as the schema says; ${indexes}`);
    const pool = await resolvePool(metaOf(c), opts);
    // Peers registered before leases existed get a whole lease from now, not an instant expiry.
    const until = Date.now() + leaseMs;
    const granted = (await c.query('UPDATE peers SET lease_expires = $1 WHERE lease_expires IS NULL', [until])).rowCount ?? 0;
    if (granted > 0) log.info(`${granted} peer(s) registered before leases get one until ${new Date(until).toISOString()}`);
    return pool;
  });
}
