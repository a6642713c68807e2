// Whether the database may be opened as our registry, checked inside the
// transaction that opens it, so that a refusal rolls back whatever the open
// did (a migration included) and leaves the database as it was. Refused: a
// schema of some other program (objects present, ours not among them), a
// schema version newer than this wirecagesrv, and a catalog that is not what
// the schema must be (catalog.ts). Where the amcheck extension is installed,
// every B-tree index of ours is verified with bt_index_check too.
import pg from 'pg';
import { RegistryError } from '../errors.js';
import { catalogProblems, TABLES } from './catalog.js';
import { APPLICATION, SCHEMA_VERSION } from './migrations.js';
import type { Querier } from './tx.js';

export const LEAVE_IT =
  'It was left untouched: restore it from a backup, or give --registry an empty database to start an empty registry (every peer then registers anew).';

/** The schema version of the registry in the current schema: 0 for an empty schema; refuses foreign and newer ones. */
export async function schemaVersion(c: Querier, location: string): Promise<number> {
  const objects = (
    await c.query<{ relname: string }>(
      `SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace
       AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY relname`,
    )
  ).rows.map((r) => r.relname);
  if (objects.length === 0) return 0;
  const foreign = () =>
    new RegistryError(
      `${location} is a PostgreSQL database of some other program (it holds ${objects.slice(0, 3).join(', ')}` +
        `${objects.length > 3 ? ', ...' : ''}), not a wirecagesrv registry. ${LEAVE_IT}`,
    );
  if (!objects.includes('wirecagesrv_schema')) throw foreign();
  const rows = (await c.query<{ application: string; version: number }>('SELECT application, version FROM wirecagesrv_schema')).rows;
  if (rows.length !== 1 || rows[0]!.application !== APPLICATION) throw foreign();
  const version = rows[0]!.version;
  if (version > SCHEMA_VERSION) {
    throw new RegistryError(
      `the registry ${location} has schema version ${version}, newer than this wirecagesrv understands (${SCHEMA_VERSION}); run a newer wirecagesrv`,
    );
  }
  return version;
}

/** Refuses a catalog that differs from the schema (after migration, before commit). */
export async function checkCatalog(c: Querier, location: string): Promise<void> {
  const problems = await catalogProblems(c);
  if (problems.length > 0) {
    const shown = problems.slice(0, 3).join('; ') + (problems.length > 3 ? `; and ${problems.length - 3} more` : '');
    throw new RegistryError(`the registry ${location} failed the schema check (${shown}). ${LEAVE_IT}`);
  }
}

const BTREE_CHECK = `
  SELECT count(bt_index_check(x.indexrelid::regclass)) AS n
  FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam
  WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1) AND am.amname = 'btree'`;

/**
 * bt_index_check on every B-tree index of ours when amcheck is installed in the database; says
 * what it could check. Run under a savepoint: a missing privilege must not abort the open.
 */
export async function checkIndexes(c: Querier, location: string): Promise<string> {
  const installed = (await c.query("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")).rowCount ?? 0;
  if (installed === 0) return 'amcheck is not installed in the database (CREATE EXTENSION amcheck), so its indexes were not verified';
  await c.query('SAVEPOINT amcheck');
  try {
    const n = (await c.query<{ n: string }>(BTREE_CHECK, [TABLES])).rows[0]!.n;
    await c.query('RELEASE SAVEPOINT amcheck');
    return `amcheck verified its ${n} B-tree indexes`;
  } catch (err) {
    await c.query('ROLLBACK TO SAVEPOINT amcheck');
    if (err instanceof pg.DatabaseError && err.code === '42501') {
      return `amcheck is installed but this role may not run bt_index_check (${err.message}), so its indexes were not verified`;
    }
    throw new RegistryError(`the registry ${location} failed amcheck's index check (${(err as Error).message}). ${LEAVE_IT}`);
  }
}
