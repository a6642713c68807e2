// One way in: the location says which store. PostgreSQL's client is loaded
// only when asked for, so a one-file server never pays for it.
import { isPostgresUrl } from './options.js';
import { SqliteRegistry } from './sqlite/registry.js';
import type { Registry, RegistryOptions } from './types.js';

export async function openRegistry(opts: RegistryOptions): Promise<Registry> {
  if (!isPostgresUrl(opts.location)) return SqliteRegistry.open(opts);
  const { PostgresRegistry } = await import('./postgres/registry.js');
  return PostgresRegistry.open(opts);
}
