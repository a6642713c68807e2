import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { APPLICATION_ID, defaultStatePath, Registry, RegistryError, RegistryFullError, SCHEMA_VERSION } from '../src/registry/index.js';
import { newPublicKey, tempDirs } from './helpers.js';

describe('registry', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  const dbPath = () => join(tmp.make(), 'state', 'registry.db');

  it('creates the schema from an empty file and records the pools', () => {
    const path = dbPath();
    const r = Registry.open({ path });
    r.close();
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(db.pragma('application_id', { simple: true }), APPLICATION_ID);
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
      (t) => t.name,
    );
    assert.deepEqual(tables, ['forwards', 'meta', 'peers', 'proof_nonces']);
    const meta = Object.fromEntries(
      (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((m) => [m.key, m.value]),
    );
    db.close();
    assert.equal(meta.subnet4, '10.200.100.0/24');
    assert.match(meta.subnet6 ?? '', /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
  });

  it('opens a file at the current version without changing its data', () => {
    const path = dbPath();
    const r = Registry.open({ path });
    const k = newPublicKey();
    const first = r.register(k).peer;
    const pool6 = r.pool.subnet6.text;
    r.close();
    const again = Registry.open({ path });
    assert.equal(again.pool.subnet6.text, pool6, 'the ULA is generated once');
    assert.deepEqual(again.get(k), first);
    again.close();
  });

  it('gives the server the first host address and peers the next ones, in both families', () => {
    const r = Registry.open({ path: dbPath(), subnet6: 'fd00:1:2:3::/64' });
    assert.equal(r.pool.server4, '10.200.100.1');
    assert.equal(r.pool.server6, 'fd00:1:2:3::1');
    const a = r.register(newPublicKey()).peer;
    const b = r.register(newPublicKey()).peer;
    assert.deepEqual([a.address4, a.address6, b.address4, b.address6], ['10.200.100.2', 'fd00:1:2:3::2', '10.200.100.3', 'fd00:1:2:3::3']);
    r.close();
  });

  it('gives the same key the same addresses, and tells whether it was new', () => {
    const r = Registry.open({ path: dbPath() });
    const k = newPublicKey();
    const one = r.register(k, 1_000);
    const two = r.register(k, 1_000);
    assert.equal(one.created, true);
    assert.equal(two.created, false);
    assert.deepEqual(two.peer, one.peer);
    assert.equal(r.count(), 1);
    r.close();
  });

  it('never hands out the network, server or broadcast address, and says when the pool is full', () => {
    const r = Registry.open({ path: dbPath(), subnet: '192.0.2.64/29', subnet6: 'fd00::/64' });
    const got = [];
    for (let i = 0; i < 5; i++) got.push(r.register(newPublicKey()).peer.address4);
    assert.deepEqual(got, ['192.0.2.66', '192.0.2.67', '192.0.2.68', '192.0.2.69', '192.0.2.70']);
    assert.throws(
      () => r.register(newPublicKey()),
      (e: Error) => e instanceof RegistryFullError && /192\.0\.2\.64\/29/.test(e.message),
    );
    r.close();
  });

  it('is bounded by the IPv6 pool too when it is the smaller one', () => {
    const r = Registry.open({ path: dbPath(), subnet: '10.9.0.0/16', subnet6: 'fd00::/126' });
    assert.equal(r.pool.capacity, 2);
    r.register(newPublicKey());
    assert.equal(r.register(newPublicKey()).peer.address6, 'fd00::3');
    assert.throws(() => r.register(newPublicKey()), RegistryFullError);
    r.close();
  });

  it('stops at --max-peers, but still answers a known key', () => {
    const r = Registry.open({ path: dbPath(), maxPeers: 2 });
    const k = newPublicKey();
    r.register(k);
    r.register(newPublicKey());
    assert.throws(() => r.register(newPublicKey()), /maximum of 2 peers/);
    assert.equal(r.register(k).created, false);
    r.close();
  });

  it('reuses the lowest address of a removed peer', () => {
    const r = Registry.open({ path: dbPath() });
    const keys = Array.from({ length: 4 }, newPublicKey);
    for (const k of keys) r.register(k);
    assert.equal(r.remove(keys[1]!), true);
    assert.equal(r.remove(keys[1]!), false);
    assert.equal(r.register(newPublicKey()).peer.address4, '10.200.100.3');
    assert.equal(r.register(newPublicKey()).peer.address4, '10.200.100.6');
    r.close();
  });

  it('keeps every peer across a restart', () => {
    const path = dbPath();
    const r = Registry.open({ path });
    const peers = Array.from({ length: 5 }, () => r.register(newPublicKey()).peer);
    r.touch(peers[0]!.publicKey, 1_700_000_000_000);
    r.close();
    const again = Registry.open({ path });
    assert.deepEqual(
      again.list().map((p) => p.publicKey),
      peers.map((p) => p.publicKey),
    );
    assert.equal(again.get(peers[0]!.publicKey)!.lastSeen!.getTime(), 1_700_000_000_000);
    assert.equal(again.get(peers[1]!.publicKey)!.lastSeen, null);
    again.close();
  });

  it('refuses a different subnet while peers hold addresses in the recorded one', () => {
    const path = dbPath();
    Registry.open({ path }).close();
    // No peers yet: the new subnet is taken and recorded.
    const r = Registry.open({ path, subnet: '10.50.0.0/24' });
    r.register(newPublicKey());
    r.close();
    assert.throws(() => Registry.open({ path, subnet: '10.60.0.0/24' }), /--subnet 10\.60\.0\.0\/24 differs from 10\.50\.0\.0\/24.*1 peer/);
    assert.throws(() => Registry.open({ path, subnet6: 'fd00:9::/64' }), /--subnet6 fd00:9::\/64 differs from/);
    const same = Registry.open({ path, subnet: '10.50.0.0/24' });
    assert.equal(same.count(), 1);
    same.close();
  });

  it('rejects unusable subnets with the flag named', () => {
    assert.throws(() => Registry.open({ path: dbPath(), subnet: '10.0.0.0/31' }), /--subnet: "10\.0\.0\.0\/31" is too small/);
    assert.throws(() => Registry.open({ path: dbPath(), subnet: 'fd00::/64' }), /--subnet: "fd00::\/64" is not an IPv4 prefix/);
    assert.throws(() => Registry.open({ path: dbPath(), subnet6: '10.0.0.0/8' }), /--subnet6: .* is not an IPv6 prefix/);
    assert.throws(() => Registry.open({ path: dbPath(), subnet: '10.0.0.7' }), /needs a prefix length/);
  });

  describe('a damaged or foreign state file', () => {
    function refusesUntouched(path: string, pattern: RegExp): void {
      const before = readFileSync(path);
      assert.throws(
        () => Registry.open({ path }),
        (e: Error) => e instanceof RegistryError && pattern.test(e.message) && /left untouched/.test(e.message),
      );
      assert.deepEqual(readFileSync(path), before, 'the file is byte-identical');
    }

    it('refuses a file that is not SQLite', () => {
      const path = dbPath();
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, Buffer.alloc(8192, 0x5a));
      refusesUntouched(path, /unreadable or corrupt.*not a database/);
    });

    it('refuses a registry whose pages are damaged', () => {
      const path = dbPath();
      const r = Registry.open({ path, subnet: '10.9.0.0/16' });
      for (let i = 0; i < 400; i++) r.register(newPublicKey());
      r.close();
      const bytes = readFileSync(path);
      const pageSize = bytes.readUInt16BE(16);
      // Garbage over a whole b-tree page (the fourth) of the peers table or its indexes.
      bytes.fill(0xa5, pageSize * 3, pageSize * 4);
      writeFileSync(path, bytes);
      refusesUntouched(path, /integrity check|unreadable or corrupt/);
    });

    it("refuses another program's SQLite database", () => {
      const path = dbPath();
      mkdirSync(join(path, '..'), { recursive: true });
      const db = new Database(path);
      db.exec('CREATE TABLE notes (body TEXT)');
      db.close();
      refusesUntouched(path, /some other program/);
    });

    it('refuses a registry from a newer wirecagesrv', () => {
      const path = dbPath();
      Registry.open({ path }).close();
      const db = new Database(path);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      assert.throws(
        () => Registry.open({ path }),
        new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this wirecagesrv understands`),
      );
    });

    it('migrates a version-1 registry in place, keeping its peers, and records where handshakes came from', () => {
      const path = dbPath();
      const r1 = Registry.open({ path });
      const { peer } = r1.register('x'.repeat(43) + '=');
      r1.close();
      // Back to the first schema, as a file written by the first release looks.
      const db = new Database(path);
      db.exec(
        'DROP TABLE proof_nonces; DROP INDEX peers_by_lease; ALTER TABLE peers DROP COLUMN lease_expires; ALTER TABLE peers DROP COLUMN last_endpoint',
      );
      db.pragma('user_version = 1');
      db.close();
      const before = Date.now();
      const r2 = Registry.open({ path, leaseMs: 3_600_000 });
      try {
        const again = r2.get(peer.publicKey)!;
        assert.equal(again.address4, peer.address4);
        assert.equal(again.lastEndpoint, null);
        // Registered before leases existed: a whole lease from the upgrade, not an instant expiry.
        assert.ok(
          again.leaseExpires.getTime() >= before + 3_600_000 && again.leaseExpires.getTime() <= Date.now() + 3_600_000,
          again.leaseExpires.toISOString(),
        );
        r2.touch(peer.publicKey, 1_700_000_000_000, '192.0.2.7:41000');
        assert.equal(r2.get(peer.publicKey)!.lastEndpoint, '192.0.2.7:41000');
        // A later handshake with no endpoint known keeps the last one.
        r2.touch(peer.publicKey, 1_700_000_001_000);
        assert.equal(r2.get(peer.publicKey)!.lastEndpoint, '192.0.2.7:41000');
      } finally {
        r2.close();
      }
    });

    it('refuses a directory in place of the file', () => {
      const path = dbPath();
      mkdirSync(path, { recursive: true });
      assert.throws(() => Registry.open({ path }), /is not a regular file/);
    });
  });

  it('hands out distinct addresses to processes registering at once', async function () {
    this.timeout(30_000);
    const path = dbPath();
    Registry.open({ path, subnet: '10.77.0.0/22' }).close();
    const url = new URL('../src/registry/index.ts', import.meta.url).href;
    const script = `
      const { Registry } = await import(${JSON.stringify(url)});
      const { generatePrivateKey, publicKeyOf, keyToBase64 } = await import('@wirecage/wg-engine');
      const r = Registry.open({ path: ${JSON.stringify(path)} });
      for (let i = 0; i < 40; i++) r.register(keyToBase64(publicKeyOf(generatePrivateKey())));
      r.close();`;
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
    const r = Registry.open({ path });
    const peers = r.list();
    r.close();
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
