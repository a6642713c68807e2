// The core flow as an ordinary user: no root, no capabilities, only an
// unprivileged user namespace. The user is created by the test and removed
// afterwards; /dev/net/tun is opened to everyone for the run (as distributions
// ship it) and set back to its old mode.
import assert from 'node:assert/strict';
import { chown, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import { WIRECAGE_BIN, cageKey, cageLab, registerClient, serverPeer, writeWgQuick, type CageLab, type CageServer } from '../lib/cage.js';
import { asUserArgs, assertUserReads, createTestUser, openTunToEveryone, type TestUser } from '../lib/test-user.js';

describe('wirecage run: as an unprivileged user', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  let user: TestUser & { home: string };
  let conf: string;
  after(() => lab.teardown());

  before(async () => {
    c = await cageLab(lab);
    srv = c.servers[0]!;

    const u = await createTestUser(lab, `${lab.id}u`);
    // The user's own 0700 directory: its config (0600), its TMPDIR (wirecage's runtime dir goes there).
    // A lab temp dir under /tmp: the cage shares it as the working directory (it is below /tmp).
    const home = await lab.tempDir();
    await chown(home, u.uid, u.gid);
    user = { ...u, home };
    await openTunToEveryone(lab);
    await assertUserReads(c.client, user, WIRECAGE_BIN);

    const key = await cageKey(c.dir, 'user');
    const me = srv.clientAddress(2);
    await registerClient(srv, key, [me.v4]);
    conf = await writeWgQuick(home, 'user.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [serverPeer(srv)]);
    await chown(conf, user.uid, user.gid);
  });

  /** `cmd args` as the test user (no supplementary groups, no capabilities) in the client namespace. */
  function asUser(cmd: string, args: readonly string[], timeoutMs = 30_000) {
    return run('ip', ['netns', 'exec', c.client.name, ...asUserArgs(user), cmd, ...args], {
      env: { PATH: process.env.PATH, HOME: user.home, TMPDIR: user.home },
      cwd: user.home,
      timeoutMs,
    });
  }

  it('starts wirecage without any privilege', async () => {
    const r = await asUser('sh', ['-c', 'id -u; grep ^CapEff /proc/self/status']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [String(user.uid), 'CapEff:\t0000000000000000']);
  });

  it('reaches the server through the cage, and what the command writes belongs to the user', async () => {
    const made = join(user.home, 'made-in-cage');
    const script = `ip -o link | cut -d: -f2; ping -n -c1 -W2 ${srv.v4} && touch ${made}`;
    const r = await asUser(process.execPath, [WIRECAGE_BIN, 'run', '-c', conf, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ lo\n wirecage\n/);
    assert.match(r.stdout, /1 received/);
    const st = await stat(made);
    assert.deepEqual([st.uid, st.gid], [user.uid, user.gid], 'the command gained another identity outside the cage');
  });

  it('keeps its config unreadable inside the cage', async () => {
    const r = await asUser(process.execPath, [WIRECAGE_BIN, 'run', '-c', conf, '--', 'cat', conf]);
    assert.equal(r.stdout, '');
  });

  it('refuses --user when not started as root', async () => {
    const r = await asUser(process.execPath, [WIRECAGE_BIN, 'run', '-c', conf, '--user', 'nobody', '--', 'true']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /--user needs wirecage to be started as root/);
  });
});
