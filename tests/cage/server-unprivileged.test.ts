// `wirecage run NAME` as an ordinary user against a real wirecagesrv in a lab
// (tests/lib/srv-lab.ts): when the server forgot the client, stage 2, which
// runs as root of a user namespace mapping that user alone, registers again
// within the run; the state it writes back belongs to the user (0600), and
// the next run takes it as it is.
import assert from 'node:assert/strict';
import { chown, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { SRV_BIN, SRV_TOKEN, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { asUserArgs, assertUserReads, createTestUser, openTunToEveryone, type TestUser } from '../lib/test-user.js';
import { writeSecretFile } from '../lib/wg.js';

describe('wirecage run NAME without privilege registers again within the run', function () {
  this.timeout(120_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let user: TestUser & { home: string };
  let adminFile: string;

  /** `cmd args` as the test user (no supplementary groups, no capabilities) in the client namespace. */
  const asUser = (cmd: string, args: readonly string[]) =>
    run('ip', ['netns', 'exec', l.cli.name, ...asUserArgs(user), cmd, ...args], {
      env: { PATH: process.env.PATH, HOME: user.home, TMPDIR: user.home },
      cwd: user.home,
      timeoutMs: 60_000,
    });
  const leaseFile = () => join(user.home, '.config', 'wirecage', 'keys', 'lab.lease.json');

  before(async () => {
    l = await srvLab(lab);
    adminFile = await writeSecretFile(l.dir, 'admin', 'lab-admin-unpriv-0123456789\n');
    server = await startWirecagesrv(l, ['--admin-token-file', adminFile]);
    const u = await createTestUser(lab, `${lab.id}u`);
    const home = await lab.tempDir();
    await chown(home, u.uid, u.gid);
    user = { ...u, home };
    await openTunToEveryone(lab);
    await assertUserReads(l.cli, user, WIRECAGE_BIN);
    const token = await writeSecretFile(home, 'token', `${SRV_TOKEN}\n`);
    await chown(token, u.uid, u.gid);
    const add = await asUser(process.execPath, [
      WIRECAGE_BIN,
      'add-server',
      'lab',
      `http://${l.srvAddr}:8443`,
      '--insecure-http',
      '--token-file',
      token,
    ]);
    assert.equal(add.code, 0, add.stderr);
  });

  it("registers, then after `peers remove` registers again in stage 2; the state stays the user's, 0600", async () => {
    const first = await asUser(process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--', 'true']);
    assert.equal(first.code, 0, `${first.stderr}\n${server.describe()}`);
    const before = JSON.parse(await readFile(leaseFile(), 'utf8')) as { client_public_key: string; registered_at: string };
    const rm = await l.cli.run(
      process.execPath,
      [SRV_BIN, 'peers', 'remove', before.client_public_key, '--api', `http://${l.srvAddr}:8443`],
      {
        env: { PATH: process.env.PATH, HOME: l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile },
        timeoutMs: 30_000,
      },
    );
    assert.equal(rm.code, 0, rm.stderr);

    const again = await asUser(process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--wait-handshake', '3', '--', 'true']);
    assert.equal(again.code, 0, `${again.stderr}\n${server.describe()}`);
    assert.match(
      again.stderr,
      /^wirecage: warning: no WireGuard handshake with \S+ within 3 s with the registration stored in \S+lab\.lease\.json \(has the server forgotten this client\?\): registered again with http:\/\/\S+\n$/,
    );
    const st = await stat(leaseFile());
    assert.equal(st.uid, user.uid, 'written back as the user, not as some other id');
    assert.equal(st.mode & 0o777, 0o600);
    const after = JSON.parse(await readFile(leaseFile(), 'utf8')) as { registered_at: string; registration?: unknown };
    assert.ok(after.registration);
    assert.notEqual(after.registered_at, before.registered_at);

    const next = await asUser(process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--', 'true']);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stderr, '');
  });
});
