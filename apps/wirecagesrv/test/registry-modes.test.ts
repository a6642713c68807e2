import assert from 'node:assert/strict';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteRegistry } from '../src/registry/index.js';
import { newPublicKey, tempDirs } from './helpers.js';

// registry.db holds every peer's real endpoint: it and SQLite's -wal and -shm
// are 0600 whatever the umask, and an existing file with a looser mode is
// corrected at start, with a log line.

const mode = (f: string) => statSync(f).mode & 0o777;
const files = (path: string) => [path, `${path}-wal`, `${path}-shm`];

function recorder(): { lines: string[]; logger: never } {
  const lines: string[] = [];
  const log = {
    debug() {},
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  };
  return { lines, logger: log as never };
}

describe('registry file modes', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('creates the registry and its -wal and -shm 0600 even under umask 000', async () => {
    const path = join(tmp.make(), 'state', 'registry.db');
    const old = process.umask(0);
    let r: SqliteRegistry;
    try {
      // The umask holds until the open is done, whatever it creates meanwhile.
      r = await SqliteRegistry.open({ location: path });
    } finally {
      process.umask(old);
    }
    try {
      await r.register(newPublicKey());
      for (const f of files(path)) {
        assert.ok(existsSync(f), f);
        assert.equal(mode(f).toString(8), '600', f);
      }
      assert.equal(mode(join(path, '..')).toString(8), '700', 'its directory');
    } finally {
      await r.close();
    }
  });

  it('sets an existing registry and its -wal and -shm to 0600 at start, and says so', async () => {
    const path = join(tmp.make(), 'registry.db');
    // Still open, so its -wal and -shm exist (as after a crash, or beside another process using the file).
    const other = await SqliteRegistry.open({ location: path });
    await other.register(newPublicKey());
    for (const f of files(path)) chmodSync(f, 0o644);
    const { lines, logger } = recorder();
    const r = await SqliteRegistry.open({ location: path, logger });
    try {
      for (const f of files(path)) assert.equal(mode(f).toString(8), '600', f);
      assert.deepEqual(
        lines,
        files(path).map((f) => `warn ${f} had mode 0644 (others could read peers' endpoints); set it to 0600`),
      );
      assert.equal(await r.count(), 1, 'the content is kept');
    } finally {
      await r.close();
      await other.close();
    }
    // Already right: nothing to say.
    const quiet = recorder();
    await (await SqliteRegistry.open({ location: path, logger: quiet.logger })).close();
    assert.deepEqual(quiet.lines, []);
  });
});
