import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  APPLICATION_ID,
  defaultStatePath,
  ForwardConflictError,
  ForwardLimitError,
  RegistryError,
  RegistryFullError,
  SCHEMA_VERSION,
  SqliteRegistry,
} from '../src/registry/index.js';
import { newPublicKey, tempDirs } from './helpers.js';
import { forEachStore, type StoreOptions } from './stores.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// What both stores must do alike; each store's own checks follow (SQLite's
// here, PostgreSQL's in registry-postgres.test.ts).
forEachStore('registry', (store) => {
  it('opens a registry at the current version without changing its data', async () => {
    const location = await store.location();
    const r = await store.open(location);
    const k = newPublicKey();
    const first = (await r.register(k)).peer;
    const pool6 = r.pool.subnet6.text;
    await r.close();
    const again = await store.open(location);
    assert.equal(again.pool.subnet6.text, pool6, 'the ULA is generated once');
    assert.deepEqual(await again.get(k), first);
  });

  it('gives the server the first host address and peers the next ones, in both families', async () => {
    const r = await store.fresh({ subnet6: 'fd00:1:2:3::/64' });
    assert.equal(r.pool.server4, '10.200.100.1');
    assert.equal(r.pool.server6, 'fd00:1:2:3::1');
    const a = (await r.register(newPublicKey())).peer;
    const b = (await r.register(newPublicKey())).peer;
    assert.deepEqual([a.address4, a.address6, b.address4, b.address6], ['10.200.100.2', 'fd00:1:2:3::2', '10.200.100.3', 'fd00:1:2:3::3']);
    assert.equal(a.hostIndex, 2);
  });

  it('gives the same key the same addresses, and tells whether it was new', async () => {
    const r = await store.fresh();
    const k = newPublicKey();
    const one = await r.register(k, 1_000);
    const two = await r.register(k, 1_000);
    assert.equal(one.created, true);
    assert.equal(two.created, false);
    assert.deepEqual(two.peer, one.peer);
    assert.equal(await r.count(), 1);
  });

  it('never hands out the network, server or broadcast address, and says when the pool is full', async () => {
    const r = await store.fresh({ subnet: '192.0.2.64/29', subnet6: 'fd00::/64' });
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await r.register(newPublicKey())).peer.address4);
    assert.deepEqual(got, ['192.0.2.66', '192.0.2.67', '192.0.2.68', '192.0.2.69', '192.0.2.70']);
    await assert.rejects(
      r.register(newPublicKey()),
      (e: Error) => e instanceof RegistryFullError && /every address of 192\.0\.2\.64\/29 is taken/.test(e.message),
    );
  });

  it('is bounded by the IPv6 pool too when it is the smaller one', async () => {
    const r = await store.fresh({ subnet: '10.9.0.0/16', subnet6: 'fd00::/126' });
    assert.equal(r.pool.capacity, 2);
    await r.register(newPublicKey());
    assert.equal((await r.register(newPublicKey())).peer.address6, 'fd00::3');
    await assert.rejects(r.register(newPublicKey()), RegistryFullError);
  });

  it('stops at --max-peers, but still answers a known key', async () => {
    const r = await store.fresh({ maxPeers: 2 });
    const k = newPublicKey();
    await r.register(k);
    await r.register(newPublicKey());
    await assert.rejects(r.register(newPublicKey()), (e: Error) => e instanceof RegistryFullError && /maximum of 2 peers/.test(e.message));
    assert.equal((await r.register(k)).created, false);
  });

  it('reuses the lowest address of a removed peer', async () => {
    const r = await store.fresh();
    const keys = Array.from({ length: 4 }, newPublicKey);
    for (const k of keys) await r.register(k);
    assert.equal(await r.remove(keys[1]!), true);
    assert.equal(await r.remove(keys[1]!), false);
    assert.equal((await r.register(newPublicKey())).peer.address4, '10.200.100.3');
    assert.equal((await r.register(newPublicKey())).peer.address4, '10.200.100.6');
  });

  it('keeps every peer across a restart, with its handshake, endpoint and session node', async () => {
    const location = await store.location();
    const r = await store.open(location, { node: 'node-a' });
    const peers = [];
    for (let i = 0; i < 5; i++) peers.push((await r.register(newPublicKey())).peer);
    await r.touch(peers[0]!.publicKey, 1_700_000_000_000, '192.0.2.7:41000');
    await r.close();
    const again = await store.open(location, { node: 'node-b' });
    assert.deepEqual(
      (await again.list()).map((p) => p.publicKey),
      peers.map((p) => p.publicKey),
    );
    const touched = (await again.get(peers[0]!.publicKey))!;
    assert.equal(touched.lastSeen!.getTime(), 1_700_000_000_000);
    assert.equal(touched.lastEndpoint, '192.0.2.7:41000');
    assert.equal(touched.sessionNode, 'node-a');
    const untouched = (await again.get(peers[1]!.publicKey))!;
    assert.deepEqual([untouched.lastSeen, untouched.lastEndpoint, untouched.sessionNode], [null, null, null]);
    // A handshake with no endpoint known keeps the last one; the session moves to the node that completed it.
    await again.touch(peers[0]!.publicKey, 1_700_000_001_000);
    const moved = (await again.get(peers[0]!.publicKey))!;
    assert.deepEqual([moved.lastEndpoint, moved.sessionNode], ['192.0.2.7:41000', 'node-b']);
    await again.touch(newPublicKey(), 1_700_000_001_000);
    assert.equal(await again.count(), 5, 'a handshake of an unknown key registers nothing');
  });

  it('refuses a different subnet while peers hold addresses in the recorded one', async () => {
    const location = await store.location();
    await (await store.open(location)).close();
    // No peers yet: the new subnet is taken and recorded.
    const r = await store.open(location, { subnet: '10.50.0.0/24' });
    await r.register(newPublicKey());
    await r.close();
    await assert.rejects(
      store.open(location, { subnet: '10.60.0.0/24' }),
      /--subnet 10\.60\.0\.0\/24 differs from 10\.50\.0\.0\/24.*1 peer/,
    );
    await assert.rejects(store.open(location, { subnet6: 'fd00:9::/64' }), /--subnet6 fd00:9::\/64 differs from/);
    const same = await store.open(location, { subnet: '10.50.0.0/24' });
    assert.equal(await same.count(), 1);
  });

  it('rejects unusable subnets and options with the flag named', async () => {
    // Refused before anything is recorded: one location serves every case.
    const location = await store.location();
    const open = (opts: StoreOptions) => store.open(location, opts);
    await assert.rejects(open({ subnet: '10.0.0.0/31' }), /--subnet: "10\.0\.0\.0\/31" is too small/);
    await assert.rejects(open({ subnet: 'fd00::/64' }), /--subnet: "fd00::\/64" is not an IPv4 prefix/);
    await assert.rejects(open({ subnet6: '10.0.0.0/8' }), /--subnet6: .* is not an IPv6 prefix/);
    await assert.rejects(open({ subnet: '10.0.0.7' }), /needs a prefix length/);
    await assert.rejects(open({ maxPeers: 0 }), /--max-peers must be a whole number of at least 1/);
    await assert.rejects(open({ node: 'no spaces' }), /--node-name "no spaces" must be/);
  });

  it('lists expired leases oldest first, and removes an expired peer only while it is still expired', async () => {
    const r = await store.fresh({ leaseMs: DAY });
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const [a, b, c] = [newPublicKey(), newPublicKey(), newPublicKey()];
    await r.register(b, t0 + HOUR);
    await r.register(a, t0);
    await r.register(c, t0 + 2 * DAY);
    assert.deepEqual(
      (await r.expired(t0 + DAY + HOUR)).map((p) => p.publicKey),
      [a, b],
    );
    // Renewed since the sweep looked: not removed.
    await r.register(b, t0 + DAY);
    assert.equal(await r.removeExpired(b, t0 + DAY + HOUR), false);
    assert.equal(await r.removeExpired(a, t0 + DAY + HOUR), true);
    assert.equal(await r.removeExpired(a, t0 + DAY + HOUR), false, 'once');
    assert.deepEqual(
      (await r.list()).map((p) => p.publicKey),
      [b, c],
    );
  });

  it('renews a lease by handshake one whole step at a time, and never revives an expired one', async () => {
    const r = await store.fresh({ leaseMs: 30 * DAY });
    const k = newPublicKey();
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    await r.register(k, t0);
    await r.touch(k, t0 + 59 * 60_000);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + 30 * DAY);
    await r.touch(k, t0 + HOUR);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + HOUR + 30 * DAY);
    await r.touch(k, t0 + HOUR + 31 * DAY);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + HOUR + 30 * DAY, 'expired: not revived');
  });

  it("records forwards, one peer per public port, and drops a peer's forwards with it", async () => {
    const r = await store.fresh();
    const [a, b] = [newPublicKey(), newPublicKey()];
    await r.register(a);
    await r.register(b);
    const made = await r.forwards.add({ protocol: 'tcp', publicPort: 8080, targetPort: 80, peerPublicKey: a }, { now: 1_700_000_000_000 });
    assert.deepEqual(made, { protocol: 'tcp', publicPort: 8080, targetPort: 80, peerPublicKey: a, createdAt: new Date(1_700_000_000_000) });
    await r.forwards.add({ protocol: 'udp', publicPort: 8080, targetPort: 53, peerPublicKey: b });
    await r.forwards.add({ protocol: 'tcp', publicPort: 9000, targetPort: 22, peerPublicKey: a });
    await assert.rejects(
      r.forwards.add({ protocol: 'tcp', publicPort: 8080, targetPort: 81, peerPublicKey: b }),
      (e: Error) =>
        e instanceof ForwardConflictError && /tcp port 8080 is already forwarded/.test(e.message) && e.existing?.peerPublicKey === a,
    );
    const stranger = newPublicKey();
    await assert.rejects(
      r.forwards.add({ protocol: 'tcp', publicPort: 7000, targetPort: 80, peerPublicKey: stranger }),
      (e: Error) => e instanceof ForwardConflictError && e.existing === null && e.message.includes(stranger),
    );
    assert.deepEqual(await r.forwards.get('tcp', 8080), made);
    assert.deepEqual(
      (await r.forwards.list(a)).map((f) => `${f.protocol}/${f.publicPort}`),
      ['tcp/8080', 'tcp/9000'],
    );
    assert.deepEqual(
      (await r.forwards.list()).map((f) => `${f.protocol}/${f.publicPort}`),
      ['tcp/8080', 'tcp/9000', 'udp/8080'],
    );
    assert.equal(await r.forwards.count(a), 2);
    assert.equal(await r.forwards.remove('tcp', 9000), true);
    assert.equal(await r.forwards.remove('tcp', 9000), false);
    await r.remove(a);
    assert.deepEqual(
      (await r.forwards.list()).map((f) => `${f.protocol}/${f.publicPort}`),
      ['udp/8080'],
      "a's forwards went with it",
    );
    assert.equal(await r.forwards.get('tcp', 8080), undefined);
  });

  it("holds a peer to its forwards' limit when adds come at once", async () => {
    const r = await store.fresh();
    const [a, b] = [newPublicKey(), newPublicKey()];
    await r.register(a);
    await r.register(b);
    const tries = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        r.forwards.add({ protocol: 'tcp', publicPort: 7000 + i, targetPort: 80, peerPublicKey: a }, { maxPerPeer: 5 }),
      ),
    );
    assert.equal(tries.filter((t) => t.status === 'fulfilled').length, 5);
    for (const t of tries) {
      if (t.status === 'rejected')
        assert.ok(t.reason instanceof ForwardLimitError && /already has 5 forwards/.test(t.reason.message), String(t.reason));
    }
    assert.equal(await r.forwards.count(a), 5);
    await r.forwards.add({ protocol: 'tcp', publicPort: 7100, targetPort: 80, peerPublicKey: b }, { maxPerPeer: 5 }); // another peer's own count
  });

  it('answers a readiness probe with a committed write', async () => {
    const r = await store.fresh();
    await r.checkWritable();
    await r.checkWritable();
  });
});

describe('registry on SQLite', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  const dbPath = () => join(tmp.make(), 'state', 'registry.db');
  const open = (location: string, opts: { subnet?: string; leaseMs?: number } = {}) => SqliteRegistry.open({ location, ...opts });

  it('creates the schema from an empty file and records the pools', async () => {
    const path = dbPath();
    const r = await open(path);
    assert.equal(r.fleet, null, 'one server, no fleet');
    await r.close();
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(db.pragma('application_id', { simple: true }), APPLICATION_ID);
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
      (t) => t.name,
    );
    assert.deepEqual(tables, ['forwards', 'meta', 'nodes', 'peers', 'proof_nonces']);
    const meta = Object.fromEntries(
      (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((m) => [m.key, m.value]),
    );
    db.close();
    assert.equal(meta.subnet4, '10.200.100.0/24');
    assert.match(meta.subnet6 ?? '', /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
  });

  describe('a damaged or foreign state file', () => {
    async function refusesUntouched(path: string, pattern: RegExp): Promise<void> {
      const before = readFileSync(path);
      await assert.rejects(
        open(path),
        (e: Error) => e instanceof RegistryError && pattern.test(e.message) && /left untouched/.test(e.message),
      );
      assert.deepEqual(readFileSync(path), before, 'the file is byte-identical');
    }

    it('refuses a file that is not SQLite', async () => {
      const path = dbPath();
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, Buffer.alloc(8192, 0x5a));
      await refusesUntouched(path, /unreadable or corrupt.*not a database/);
    });

    it('refuses a registry whose pages are damaged', async () => {
      const path = dbPath();
      const r = await open(path, { subnet: '10.9.0.0/16' });
      for (let i = 0; i < 400; i++) await r.register(newPublicKey());
      await r.close();
      const bytes = readFileSync(path);
      const pageSize = bytes.readUInt16BE(16);
      // Garbage over a whole b-tree page (the fourth) of the peers table or its indexes.
      bytes.fill(0xa5, pageSize * 3, pageSize * 4);
      writeFileSync(path, bytes);
      await refusesUntouched(path, /integrity check|unreadable or corrupt/);
    });

    it("refuses another program's SQLite database", async () => {
      const path = dbPath();
      mkdirSync(join(path, '..'), { recursive: true });
      const db = new Database(path);
      db.exec('CREATE TABLE notes (body TEXT)');
      db.close();
      await refusesUntouched(path, /is an SQLite database of some other program/);
    });

    it('refuses a registry from a newer wirecagesrv', async () => {
      const path = dbPath();
      await (await open(path)).close();
      const db = new Database(path);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      await assert.rejects(
        open(path),
        new RegExp(
          `the registry ${path} has schema version ${SCHEMA_VERSION + 1}, newer than this wirecagesrv understands \\(${SCHEMA_VERSION}\\)`,
        ),
      );
    });

    it('migrates a version-1 registry in place, keeping its peers', async () => {
      const path = dbPath();
      const r1 = await open(path);
      const { peer } = await r1.register('x'.repeat(43) + '=');
      await r1.close();
      // Back to the first schema, as a file written by the first release looks.
      const db = new Database(path);
      db.exec(
        'DROP TABLE nodes; ALTER TABLE peers DROP COLUMN session_node; DROP TABLE proof_nonces; DROP INDEX peers_by_lease; ' +
          'ALTER TABLE peers DROP COLUMN lease_expires; ALTER TABLE peers DROP COLUMN last_endpoint',
      );
      db.pragma('user_version = 1');
      db.close();
      const before = Date.now();
      const r2 = await open(path, { leaseMs: HOUR });
      try {
        const again = (await r2.get(peer.publicKey))!;
        assert.equal(again.address4, peer.address4);
        assert.deepEqual([again.lastEndpoint, again.sessionNode], [null, null]);
        // Registered before leases existed: a whole lease from the upgrade, not an instant expiry.
        const until = again.leaseExpires.getTime();
        assert.ok(until >= before + HOUR && until <= Date.now() + HOUR, again.leaseExpires.toISOString());
      } finally {
        await r2.close();
      }
    });

    it('refuses a directory in place of the file', async () => {
      const path = dbPath();
      mkdirSync(path, { recursive: true });
      await assert.rejects(open(path), /is not a regular file/);
    });
  });

  it('hands out distinct addresses to processes registering at once', async function () {
    this.timeout(30_000);
    const path = dbPath();
    await (await open(path, { subnet: '10.77.0.0/22' })).close();
    const url = new URL('../src/registry/index.ts', import.meta.url).href;
    const script = `
      const { SqliteRegistry } = await import(${JSON.stringify(url)});
      const { generatePrivateKey, publicKeyOf, keyToBase64 } = await import('@wirecage/wg-engine');
      const r = await SqliteRegistry.open({ location: ${JSON.stringify(path)} });
      for (let i = 0; i < 40; i++) await r.register(keyToBase64(publicKeyOf(generatePrivateKey())));
      await r.close();`;
    const runOne = () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          stdio: ['ignore', 'ignore', 'pipe'],
          cwd: join(import.meta.dirname, '..'),
        });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`registering process exited ${code}: ${err}`))));
      });
    await Promise.all([runOne(), runOne(), runOne(), runOne()]);
    const r = await open(path);
    const peers = await r.list();
    await r.close();
    assert.equal(peers.length, 160);
    assert.equal(new Set(peers.map((p) => p.address4)).size, 160);
    // No gaps: the lowest free index was taken every time.
    assert.deepEqual(
      peers.map((p) => p.hostIndex),
      Array.from({ length: 160 }, (_, i) => i + 2),
    );
  });

  it('defaults the state file under $XDG_STATE_HOME, else ~/.local/state', () => {
    assert.equal(defaultStatePath({ XDG_STATE_HOME: '/var/lib/x' }), '/var/lib/x/wirecagesrv/registry.db');
    assert.match(defaultStatePath({}), /\/\.local\/state\/wirecagesrv\/registry\.db$/);
    // A relative XDG path is invalid by the spec and ignored.
    assert.match(defaultStatePath({ XDG_STATE_HOME: 'rel' }), /\/\.local\/state\//);
  });
});
