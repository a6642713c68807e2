import assert from 'node:assert/strict';
import pg from 'pg';
import { waitFor } from '@wirecage/netns/lab';
import { ForwardLimitError, RegistryError, type Registry } from '../src/registry/index.js';
import { redactUrl } from '../src/registry/postgres/connect.js';
import { SCHEMA_VERSION } from '../src/registry/postgres/migrations.js';
import { PostgresRegistry } from '../src/registry/postgres/registry.js';
import { newPublicKey } from './helpers.js';
import { postgresStore } from './stores.js';

// What only the PostgreSQL store has to show: several nodes (each a
// PostgresRegistry with its own pool) writing one database at once, its
// refusal of a database that is not its registry, and its integrity checks.
// A real server (the lab's), no mocks.

const HOUR = 3_600_000;

function recorder(): { lines: string[]; logger: never } {
  const lines: string[] = [];
  const log = { debug() {}, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
  return { lines, logger: log as never };
}

describe('registry on PostgreSQL', () => {
  const store = postgresStore();
  const sql = async <T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<T>(text)).rows;
    } finally {
      await c.end();
    }
  };
  const tables = async (url: string) =>
    (
      await sql<{ relname: string }>(
        url,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname",
      )
    ).map((r) => r.relname);
  /** n registries on one database, as n nodes: node1, node2, ... */
  const nodes = async (url: string, n: number, opts: { subnet?: string; leaseMs?: number } = {}): Promise<Registry[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => store.open(url, { ...opts, node: `node${i + 1}` })));

  it('creates the schema in an empty database, marks it as ours, and records the pools', async () => {
    const url = await store.location();
    const r = await store.open(url);
    assert.ok(r.fleet, 'a fleet registry');
    assert.deepEqual(await tables(url), ['forwards', 'meta', 'nodes', 'peers', 'proof_nonces', 'wirecagesrv_schema']);
    assert.deepEqual(await sql(url, 'SELECT application, version FROM wirecagesrv_schema'), [
      { application: 'wirecagesrv', version: SCHEMA_VERSION },
    ]);
    const meta = Object.fromEntries(
      (await sql<{ key: string; value: string }>(url, 'SELECT key, value FROM meta')).map((m) => [m.key, m.value]),
    );
    assert.equal(meta.subnet4, '10.200.100.0/24');
    assert.match(meta.subnet6 ?? '', /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
    // Times are BIGINT unix ms, as SQLite's INTEGER.
    const types = await sql<{ c: string }>(
      url,
      "SELECT column_name || ' ' || data_type AS c FROM information_schema.columns WHERE table_name = 'peers' AND column_name LIKE '%_at'",
    );
    assert.deepEqual(types, [{ c: 'created_at bigint' }]);
  });

  it('says where it is without the password', async () => {
    assert.equal(redactUrl('postgres://wc:s3cret@db.example/registry'), 'postgres://wc:***@db.example/registry');
    assert.equal(
      redactUrl('postgresql://wc@db/registry?sslmode=require&password=s3cret'),
      'postgresql://wc@db/registry?sslmode=require&password=***',
    );
    // Trust authentication ignores the password: the URL opens, and only its redacted form is shown.
    const url = (await store.location()).replace('@/', ':s3cret@/');
    const r = await store.open(url);
    assert.ok(!r.location.includes('s3cret') && r.location.includes(':***@'), r.location);
  });

  it('names the registry and the reason when the database cannot be reached', async () => {
    const url = store.lab.url('nosuchdb');
    await assert.rejects(
      PostgresRegistry.open({ location: url }),
      (e: Error) =>
        e instanceof RegistryError &&
        e.message.startsWith(`cannot open the registry ${url}: `) &&
        /nosuchdb" does not exist/.test(e.message),
    );
  });

  it('gives distinct addresses, with no gaps, to 3 nodes registering 360 keys at once', async function () {
    this.timeout(60_000);
    const url = await store.location();
    const fleet = await nodes(url, 3, { subnet: '10.77.0.0/22' });
    // Each node registers its share 8 at a time: 24 registrations in flight against one lock.
    await Promise.all(
      fleet.map(async (r) => {
        const keys = Array.from({ length: 120 }, newPublicKey);
        for (let i = 0; i < keys.length; i += 8) await Promise.all(keys.slice(i, i + 8).map((k) => r.register(k)));
      }),
    );
    const peers = await fleet[0]!.list();
    assert.equal(peers.length, 360);
    assert.equal(new Set(peers.map((p) => p.address4)).size, 360);
    assert.equal(new Set(peers.map((p) => p.address6)).size, 360);
    assert.deepEqual(
      peers.map((p) => p.hostIndex),
      Array.from({ length: 360 }, (_, i) => i + 2),
    );
  });

  it('registers a key that nodes register at once only once', async () => {
    const fleet = await nodes(await store.location(), 3);
    const k = newPublicKey();
    const answers = await Promise.all(fleet.flatMap((r) => [r.register(k), r.register(k)]));
    assert.equal(answers.filter((a) => a.created).length, 1);
    assert.equal(new Set(answers.map((a) => a.peer.address4)).size, 1);
  });

  it('removes an expired peer once when 3 nodes sweep it at once', async () => {
    const fleet = await nodes(await store.location(), 3, { leaseMs: HOUR });
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const keys = Array.from({ length: 30 }, newPublicKey);
    for (const k of keys) await fleet[0]!.register(k, t0);
    const late = t0 + 2 * HOUR;
    const removed = await Promise.all(
      keys.map(async (k) => (await Promise.all(fleet.map((r) => r.removeExpired(k, late)))).filter(Boolean).length),
    );
    assert.deepEqual(
      removed,
      keys.map(() => 1),
    );
    assert.equal(await fleet[1]!.count(), 0);
  });

  it('lets 3 nodes starting at once on an empty database migrate it once and agree on the pools', async () => {
    const url = await store.location();
    const fleet = await nodes(url, 3);
    assert.equal(new Set(fleet.map((r) => r.pool.subnet6.text)).size, 1, 'one ULA, generated once');
    assert.deepEqual(await sql(url, 'SELECT version FROM wirecagesrv_schema'), [{ version: SCHEMA_VERSION }]);
  });

  it('gives one port to one forward when nodes claim it at once', async () => {
    const fleet = await nodes(await store.location(), 3);
    const keys = [newPublicKey(), newPublicKey(), newPublicKey()];
    for (const k of keys) await fleet[0]!.register(k);
    const tries = await Promise.allSettled(
      fleet.map((r, i) => r.forwards.add({ protocol: 'tcp', publicPort: 8443, targetPort: 443, peerPublicKey: keys[i]! })),
    );
    assert.equal(tries.filter((t) => t.status === 'fulfilled').length, 1);
    for (const t of tries) if (t.status === 'rejected') assert.match((t.reason as Error).message, /tcp port 8443 is already forwarded/);
  });

  it("holds a peer to its forwards' limit when nodes add at once", async () => {
    const fleet = await nodes(await store.location(), 3);
    const k = newPublicKey();
    await fleet[0]!.register(k);
    const tries = await Promise.allSettled(
      fleet.flatMap((r, n) =>
        Array.from({ length: 4 }, (_, i) =>
          r.forwards.add({ protocol: 'udp', publicPort: 9000 + n * 10 + i, targetPort: 53, peerPublicKey: k }, { maxPerPeer: 5 }),
        ),
      ),
    );
    assert.equal(tries.filter((t) => t.status === 'fulfilled').length, 5);
    for (const t of tries) if (t.status === 'rejected') assert.ok(t.reason instanceof ForwardLimitError, String(t.reason));
    assert.equal(await fleet[1]!.forwards.count(k), 5);
  });

  describe('a database that is not its registry (left untouched)', () => {
    async function refusesUntouched(url: string, pattern: RegExp): Promise<void> {
      const before = await sql(
        url,
        'SELECT relname, relkind FROM pg_class WHERE relnamespace = current_schema()::regnamespace ORDER BY relname',
      );
      await assert.rejects(
        PostgresRegistry.open({ location: url }),
        (e: Error) => e instanceof RegistryError && pattern.test(e.message) && /left untouched/.test(e.message),
      );
      const after = await sql(
        url,
        'SELECT relname, relkind FROM pg_class WHERE relnamespace = current_schema()::regnamespace ORDER BY relname',
      );
      assert.deepEqual(after, before, 'the same tables and indexes');
    }

    it("refuses another program's database", async () => {
      const url = await store.location();
      await sql(url, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
      await refusesUntouched(url, /is a PostgreSQL database of some other program \(it holds notes\), not a wirecagesrv registry/);
      assert.deepEqual(await sql(url, 'SELECT body FROM notes'), [{ body: 'keep me' }]);
    });

    it('refuses a registry from a newer wirecagesrv', async () => {
      const url = await store.location();
      await (await store.open(url)).close();
      await sql(url, `UPDATE wirecagesrv_schema SET version = ${SCHEMA_VERSION + 1}`);
      await assert.rejects(
        PostgresRegistry.open({ location: url }),
        new RegExp(
          `^RegistryError: the registry ${url.replace(/[?]/g, '\\?')} has schema version ${SCHEMA_VERSION + 1}, newer than this wirecagesrv understands \\(${SCHEMA_VERSION}\\); run a newer wirecagesrv$`,
        ),
      );
      assert.deepEqual(await sql(url, 'SELECT version FROM wirecagesrv_schema'), [{ version: SCHEMA_VERSION + 1 }]);
    });

    it('refuses a registry whose constraints are missing or not validated', async () => {
      const url = await store.location();
      const r = await store.open(url);
      await r.register(newPublicKey());
      await r.close();
      await sql(url, 'ALTER TABLE peers DROP CONSTRAINT peers_host_index_key');
      await refusesUntouched(url, /failed the schema check \(missing constraint peers UNIQUE \(host_index\)\)/);
      await sql(url, 'ALTER TABLE peers ADD UNIQUE (host_index); ALTER TABLE forwards DROP CONSTRAINT forwards_public_port_check');
      await sql(url, 'ALTER TABLE forwards ADD CHECK (public_port BETWEEN 1 AND 65535) NOT VALID');
      await refusesUntouched(url, /constraint not validated: forwards CHECK \(public_port\) NOT VALID/);
      await sql(url, 'ALTER TABLE peers ALTER COLUMN host_index TYPE integer');
      await refusesUntouched(
        url,
        /missing column peers\.host_index bigint not null; .*unexpected column peers\.host_index integer not null/,
      );
    });

    it('verifies its indexes with amcheck where the database has it, and says when it could not', async () => {
      const url = await store.location();
      const without = recorder();
      await (await store.open(url, { logger: without.logger })).close();
      assert.ok(
        without.lines.some((l) => /its catalog is as the schema says; amcheck is not installed in the database/.test(l)),
        without.lines.join('\n'),
      );
      await sql(url, 'CREATE EXTENSION amcheck');
      const withIt = recorder();
      await store.open(url, { logger: withIt.logger });
      // The constraints' own (6 primary keys, 3 unique) and the 3 named indexes.
      assert.ok(
        withIt.lines.some((l) => /amcheck verified its 12 B-tree indexes/.test(l)),
        withIt.lines.join('\n'),
      );
    });
  });

  it('migrates a version-1 registry in place, keeping its peers and giving them a lease', async () => {
    const url = await store.location();
    const r1 = await store.open(url);
    const { peer } = await r1.register(newPublicKey());
    await r1.close();
    // Back to the first schema, as the first release would have left it.
    await sql(
      url,
      'DROP TABLE nodes; ALTER TABLE peers DROP COLUMN session_node; DROP TABLE proof_nonces; ' +
        'ALTER TABLE peers DROP COLUMN lease_expires; ALTER TABLE peers DROP COLUMN last_endpoint; UPDATE wirecagesrv_schema SET version = 1',
    );
    const log = recorder();
    const before = Date.now();
    const r2 = await store.open(url, { leaseMs: HOUR, logger: log.logger });
    const again = (await r2.get(peer.publicKey))!;
    assert.equal(again.address4, peer.address4);
    assert.deepEqual([again.lastEndpoint, again.sessionNode], [null, null]);
    const until = again.leaseExpires.getTime();
    assert.ok(until >= before + HOUR && until <= Date.now() + HOUR, again.leaseExpires.toISOString());
    assert.ok(
      log.lines.some((l) => l.includes(`schema version ${SCHEMA_VERSION}, migrated from version 1`)),
      log.lines.join('\n'),
    );
  });

  it('outlives its idle connections being killed, and says so', async () => {
    const url = await store.location();
    const log = recorder();
    const r = await store.open(url, { node: 'node1', logger: log.logger });
    // Several idle connections in the pool.
    await Promise.all(Array.from({ length: 4 }, () => r.register(newPublicKey())));
    const killed = await sql<{ n: string }>(
      url,
      "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = 'wirecagesrv/node1'",
    );
    const n = Number(killed[0]!.n);
    assert.ok(n >= 1, 'connections to kill');
    const heard = () => log.lines.filter((l) => /an idle database connection failed/.test(l)).length;
    await waitFor(`the pool to hear of all ${n}`, () => (heard() === n ? true : undefined));
    assert.equal(await r.count(), 4, 'the next query opens a new connection');
  });

  it('fails a readiness probe fast while the registry cannot be written, never naming where it lives', async () => {
    const url = await store.location();
    const r = await store.open(url);
    await r.checkWritable();
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN; LOCK TABLE meta IN ACCESS EXCLUSIVE MODE');
      const t0 = Date.now();
      await assert.rejects(
        r.checkWritable(),
        (e: Error) =>
          /^cannot write to the registry: canceling statement due to lock timeout$/.test(e.message) &&
          !e.message.includes(store.lab.socketDir),
      );
      assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
      await blocker.query('COMMIT');
    } finally {
      await blocker.end();
    }
    await r.checkWritable();
    assert.deepEqual(await sql(url, "SELECT key FROM meta WHERE key LIKE 'readyz_heartbeat:%'"), [{ key: `readyz_heartbeat:${r.node}` }]);
  });
});
