import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { alive, startLabPostgres } from '@wirecage/netns/lab';

// The throwaway PostgreSQL the registry suites (and the fleet labs in tests/)
// run on: reachable on its unix socket only, and gone without a trace after
// stop(): no server process, no files, no system user.

const userExists = (name: string) => {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('lab PostgreSQL', () => {
  it('serves on a unix socket only, and stop() leaves nothing behind', async function () {
    this.timeout(60_000);
    const lab = await startLabPostgres();
    let stopped = false;
    try {
      const base = dirname(lab.socketDir);
      const pid = Number(readFileSync(join(base, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      assert.equal((await lab.psql('postgres', 'SHOW listen_addresses')).trim(), '', 'no TCP listener');
      assert.equal(lab.url('x'), `postgres://${lab.user}@/x?host=${lab.socketDir}`);
      const url = await lab.createDatabase('made_here');
      assert.equal(url, lab.url('made_here'));
      assert.equal((await lab.psql('made_here', 'SELECT current_database()')).trim(), 'made_here');
      await assert.rejects(lab.createDatabase('Bad-Name'), /must be \[a-z_\]\[a-z0-9_\]\*/);
      if (process.getuid?.() === 0) assert.ok(userExists(lab.user), 'a system user of its own');

      await lab.stop();
      stopped = true;
      assert.equal(alive(pid), false, 'the server is gone');
      assert.equal(existsSync(base), false, 'its files are gone');
      if (process.getuid?.() === 0) assert.equal(userExists(lab.user), false, 'its user is gone');
      await lab.stop(); // twice is harmless
    } finally {
      if (!stopped) await lab.stop();
    }
  });
});
