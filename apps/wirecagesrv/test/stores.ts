// The registry's two stores under one set of cases: forEachStore runs a
// suite once on SQLite (a fresh file per location) and once on PostgreSQL (a
// throwaway cluster from @wirecage/netns/lab, a fresh database per location).
// Every registry a case opens is closed after it, also when it failed.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startLabPostgres, type LabPostgres } from '@wirecage/netns/lab';
import { PostgresRegistry } from '../src/registry/postgres/registry.js';
import { SqliteRegistry, type Registry, type RegistryOptions } from '../src/registry/index.js';
import { tempDirs } from './helpers.js';

export type StoreOptions = Omit<RegistryOptions, 'location'>;

export interface StoreUnderTest {
  readonly name: 'SQLite' | 'PostgreSQL';
  /** A new, empty place for a registry. */
  location(): Promise<string>;
  /** Opens (creates) the registry at `location`; closed after the case. */
  open(location: string, opts?: StoreOptions): Promise<Registry>;
  /** A registry at a new location. */
  fresh(opts?: StoreOptions): Promise<Registry>;
}

function tracked(
  name: StoreUnderTest['name'],
  location: () => Promise<string>,
  open: (o: RegistryOptions) => Promise<Registry>,
): StoreUnderTest {
  const opened: Registry[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((r) => r.close()));
  });
  const store: StoreUnderTest = {
    name,
    location,
    async open(loc, opts = {}) {
      const r = await open({ ...opts, location: loc });
      opened.push(r);
      return r;
    },
    async fresh(opts = {}) {
      return store.open(await location(), opts);
    },
  };
  return store;
}

/** A throwaway PostgreSQL cluster for the enclosing describe: started before its cases, stopped after. */
export function labPostgres(): { readonly lab: LabPostgres; database(): Promise<string> } {
  let lab: LabPostgres | undefined;
  before(async function () {
    this.timeout(60_000);
    lab = await startLabPostgres();
  });
  after(async () => {
    await lab?.stop();
  });
  return {
    get lab() {
      if (!lab) throw new Error('the lab PostgreSQL is not started (use it inside a case)');
      return lab;
    },
    database() {
      return this.lab.createDatabase(`registry_${randomBytes(6).toString('hex')}`);
    },
  };
}

export function sqliteStore(): StoreUnderTest {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  return tracked(
    'SQLite',
    () => Promise.resolve(join(tmp.make(), 'state', 'registry.db')),
    (o) => SqliteRegistry.open(o),
  );
}

export function postgresStore(): StoreUnderTest & { readonly lab: LabPostgres } {
  const pg = labPostgres();
  const store = tracked(
    'PostgreSQL',
    () => pg.database(),
    (o) => PostgresRegistry.open(o),
  );
  return Object.defineProperty(store, 'lab', { get: () => pg.lab }) as StoreUnderTest & { readonly lab: LabPostgres };
}

/** `body` as two describes, one per store. */
export function forEachStore(title: string, body: (store: StoreUnderTest) => void): void {
  describe(`${title} (SQLite)`, () => body(sqliteStore()));
  describe(`${title} (PostgreSQL)`, () => body(postgresStore()));
}
