import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { diagnoseUserNamespaces, userNamespaceCommand, userNamespaceHelper } from '../src/index.js';

const helper = (args: string[], options: { asUser?: { uid: number; gid: number } } = {}) => {
  const [file, argv] = options.asUser
    ? ['setpriv', [`--reuid=${options.asUser.uid}`, `--regid=${options.asUser.gid}`, '--clear-groups', userNamespaceHelper, ...args]]
    : [userNamespaceHelper, args];
  return spawnSync(file, argv, { encoding: 'utf8', cwd: '/' });
};

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('wirecage-userns helper', function () {
  it('maps the caller to uid/gid 0 inside (run as root)', () => {
    const r = helper(['sh', '-c', 'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).join(' ')),
      ['0', '0', '0 0 1', '0 0 1'],
    );
    // A new user namespace, not ours.
    const inner = helper(['readlink', '/proc/self/ns/user']).stdout.trim();
    assert.notEqual(inner, execFileSync('readlink', ['/proc/self/ns/user'], { encoding: 'utf8' }).trim());
  });

  it('accepts explicit maps when privileged', () => {
    const r = helper(['--uid-map', '0:0:1,1:100000:10', '--', 'cat', '/proc/self/uid_map']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).join(' ')),
      ['0 0 1', '1 100000 10'],
    );
  });

  it('forwards the exit status, 127/126 for exec failures and 125 for its own', () => {
    assert.equal(helper(['sh', '-c', 'exit 7']).status, 7);
    const missing = helper(['wirecage-no-such-command']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /cannot run wirecage-no-such-command: No such file or directory/);
    const dir = mkdtempSync(join(tmpdir(), `wct${process.pid}x`));
    try {
      writeFileSync(join(dir, 'plain'), 'not a program\n', { mode: 0o644 });
      const denied = helper([join(dir, 'plain')]);
      assert.equal(denied.status, 126);
      assert.match(denied.stderr, /Permission denied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const usage = helper(['--uid-map', 'nonsense', 'true']);
    assert.equal(usage.status, 125);
    assert.match(usage.stderr, /bad or missing value for --uid-map/);
    assert.equal(helper([]).status, 125);
  });

  it('dies of the signal that killed the program', () => {
    const r = helper(['sh', '-c', 'kill -TERM $$']);
    assert.equal(r.status, null);
    assert.equal(r.signal, 'SIGTERM');
  });

  it('forwards SIGTERM sent to it to the program', async () => {
    const child = spawn(userNamespaceHelper, ['sh', '-c', 'trap "exit 9" TERM; echo ready; while :; do sleep 0.05; done']);
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    assert.equal(first.toString(), 'ready\n');
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 9);
  });

  it('takes the program down when the helper itself is killed', async () => {
    const child = spawn(userNamespaceHelper, ['sh', '-c', 'echo $$; exec sleep 60']);
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const pid = Number(line.toString().trim());
    assert.ok(isAlive(pid));
    child.kill('SIGKILL');
    await once(child, 'exit');
    const deadline = Date.now() + 5000;
    while (isAlive(pid) && Date.now() < deadline) await delay(20);
    assert.equal(isAlive(pid), false, `program ${pid} outlived the helper`);
  });

  it('builds its command line', () => {
    assert.deepEqual(userNamespaceCommand('node', ['stage2.js'], { dieWithParent: true }), [
      userNamespaceHelper,
      '--die-with-parent',
      '--',
      'node',
      'stage2.js',
    ]);
  });

  describe('as an unprivileged user', () => {
    const name = `wct${process.pid}u`;
    let user: { uid: number; gid: number };
    let dir: string;

    before(function () {
      execFileSync('useradd', ['--no-create-home', '--no-user-group', '--gid', 'nogroup', '--shell', '/usr/sbin/nologin', name]);
      user = {
        uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' })),
      };
      dir = mkdtempSync(join(tmpdir(), `wct${process.pid}x`));
      chmodSync(dir, 0o755);
    });

    after(() => {
      if (user) rmSync(join(tmpdir(), `tsx-${user.uid}`), { recursive: true, force: true });
      if (dir) rmSync(dir, { recursive: true, force: true });
      spawnSync('userdel', [name]);
    });

    it('maps the user to uid 0 inside, with setgroups denied', () => {
      const r = helper(['sh', '-c', 'id -u; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups'], { asUser: user });
      assert.equal(r.status, 0, `${r.stderr}\n${diagnoseUserNamespaces() ?? 'no sysctl forbids user namespaces'}`);
      assert.deepEqual(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.trim().split(/\s+/).join(' ')),
        ['0', `0 ${user.uid} 1`, `0 ${user.gid} 1`, 'deny'],
      );
    });

    it('runs the whole stage 2 unprivileged: netns, rtnetlink, spawn with mounts', () => {
      const keys = join(dir, 'keys');
      mkdirSync(keys);
      writeFileSync(join(keys, 'wg.key'), 'SECRET\n');
      writeFileSync(join(dir, 'cage.conf'), 'inside\n');
      writeFileSync(join(dir, 'host.conf'), 'outside\n');
      for (const f of [keys, join(keys, 'wg.key'), join(dir, 'cage.conf'), join(dir, 'host.conf')]) chownSync(f, user.uid, user.gid);
      const fixture = new URL('./fixtures/stage2.ts', import.meta.url).pathname;
      const r = spawnSync(
        'setpriv',
        [
          `--reuid=${user.uid}`,
          `--regid=${user.gid}`,
          '--clear-groups',
          userNamespaceHelper,
          process.execPath,
          '--import',
          'tsx',
          fixture,
          keys,
          join(dir, 'cage.conf'),
          join(dir, 'host.conf'),
        ],
        { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname },
      );
      assert.equal(r.status, 0, r.stderr);
      const seen = JSON.parse(r.stdout) as { status: unknown; lines: string[] };
      assert.deepEqual(seen.status, { code: 0, signal: null });
      assert.deepEqual(seen.lines, ['0', '10.99.0.1/32 127.0.0.1/8 ::1/128 fd99::1/128', 'inside']);
    });
  });
});

describe('diagnoseUserNamespaces', () => {
  let root: string;
  const sysctls = (values: Record<string, string>) => {
    rmSync(root, { recursive: true, force: true });
    for (const [name, value] of Object.entries(values)) {
      const path = join(root, ...name.split('.'));
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, `${value}\n`);
    }
    return root;
  };

  before(() => {
    root = mkdtempSync(join(tmpdir(), `wct${process.pid}s`));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('names the sysctl that forbids user namespaces', () => {
    assert.match(diagnoseUserNamespaces(sysctls({ 'kernel.unprivileged_userns_clone': '0' })) ?? '', /kernel\.unprivileged_userns_clone=1/);
    assert.match(diagnoseUserNamespaces(sysctls({ 'user.max_user_namespaces': '0' })) ?? '', /user\.max_user_namespaces/);
    assert.match(
      diagnoseUserNamespaces(sysctls({ 'kernel.apparmor_restrict_unprivileged_userns': '1', 'user.max_user_namespaces': '100' })) ?? '',
      /kernel\.apparmor_restrict_unprivileged_userns=0/,
    );
  });

  it('returns null when no known switch forbids them', () => {
    assert.equal(diagnoseUserNamespaces(sysctls({ 'kernel.unprivileged_userns_clone': '1', 'user.max_user_namespaces': '1000' })), null);
    assert.equal(diagnoseUserNamespaces(sysctls({})), null);
    // This machine runs the unprivileged tests above, so nothing should be reported here.
    assert.equal(diagnoseUserNamespaces(), null);
  });
});
