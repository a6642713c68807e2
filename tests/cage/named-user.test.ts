// A named cage of an ordinary user (no root anywhere): `wirecage exec` by the
// same user joins it, from the host's user namespace into the cage's nested
// one, by setns through a pidfd, and gets the same sealing as the first
// command (its uid, no capability, the private /tmp, the tunnel); root, whom
// the file modes do not stop, is refused by the control socket's peer check;
// the user's `stop` ends it.
import assert from 'node:assert/strict';
import { chown } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, nsRun } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { waitFor } from '../lib/wait.js';
import { asUserArgs, assertUserReads, createTestUser, openTunToEveryone, type TestUser } from '../lib/test-user.js';
import { WIRECAGE_BIN, cageKey, cageLab, registerClient, serverPeer, writeWgQuick, type CageLab, type CageServer } from '../lib/cage.js';

describe('wirecage: a named cage of an unprivileged user', function () {
  this.timeout(90_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  let user: TestUser;
  let home: string;
  let conf: string;
  let owner: LabProcess | undefined;
  after(async () => {
    await owner?.stop();
    await lab.teardown();
  });

  before(async () => {
    c = await cageLab(lab);
    srv = c.servers[0]!;
    user = await createTestUser(lab, `${lab.id}m`);
    // The user's own 0700 directory: its config and its TMPDIR, where wirecage's runtime dir goes.
    home = await lab.tempDir();
    await chown(home, user.uid, user.gid);
    await openTunToEveryone(lab);
    await assertUserReads(c.client, user, WIRECAGE_BIN);
    const key = await cageKey(c.dir, 'user');
    const me = srv.clientAddress(2);
    await registerClient(srv, key, [me.v4]);
    conf = await writeWgQuick(home, 'user.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [serverPeer(srv)]);
    await chown(conf, user.uid, user.gid);
  });

  const userEnv = () => ({ PATH: process.env.PATH, HOME: home, TMPDIR: home });
  const asUser = (args: string[]) =>
    nsRun(c.client, asUserArgs(user)[0]!, [...asUserArgs(user).slice(1), process.execPath, WIRECAGE_BIN, ...args], {
      env: userEnv(),
      cwd: home,
      timeoutMs: 30_000,
    });
  const ctl = () => join(home, `wirecage-${user.uid}`, 'own.ctl');

  it('runs, joins, refuses root and stops', async () => {
    owner = c.client.spawn(
      asUserArgs(user)[0]!,
      [
        ...asUserArgs(user).slice(1),
        process.execPath,
        WIRECAGE_BIN,
        'run',
        '-c',
        conf,
        '--name',
        'own',
        '--',
        'sh',
        '-c',
        'echo first > /tmp/first; exec sleep 614',
      ],
      {
        env: userEnv(),
        cwd: home,
      },
    );
    const p = owner;
    await waitFor(() => (p.assertRunning(), existsSync(ctl())), {
      what: "the user's cage to start",
      timeoutMs: 20_000,
      describe: () => p.describe(),
    });

    const r = await asUser([
      'exec',
      'own',
      '--',
      'sh',
      '-c',
      `cat /tmp/first; id -u; grep ^CapEff /proc/self/status; ping -n -c1 -W5 ${srv.v4} >/dev/null && echo reached`,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['first', String(user.uid), 'CapEff:\t0000000000000000', 'reached']);

    // Root passes the 0700 runtime dir; the socket's peer check does not let it in.
    const probe = `const s=require('net').createConnection(${JSON.stringify(ctl())});s.on('connect',()=>s.write('{"op":"join"}\\n'));s.on('data',(d)=>process.stdout.write(d));`;
    const root = await nsRun(c.client, process.execPath, ['-e', probe], { timeoutMs: 10_000 });
    assert.match(root.stdout, /"ok":false.*refused: only the user who started this cage/, root.stdout + root.stderr);

    const ps = await asUser(['ps', '--json']);
    assert.equal(ps.code, 0, ps.stderr);
    const entry = (JSON.parse(ps.stdout) as { name: string | null; processes: number }[]).find((e) => e.name === 'own');
    assert.equal(entry?.processes, 1, ps.stdout);

    const stop = await asUser(['stop', 'own', '--timeout', '5']);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor(() => !p.running, { what: 'run --name to exit after stop', timeoutMs: 10_000, describe: () => p.describe() });
    // sleep died of the SIGTERM: 128+15.
    assert.equal((await p.exited).code, 143);
    assert.deepEqual(
      readdirSync(join(home, `wirecage-${user.uid}`)).filter((f) => !f.endsWith('.lock')),
      [],
    );
  });
});
