import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, readlinkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { NetnsError, Rtnl, createNetns, exitCodeForSpawnError, pipe, spawnInCage } from '../src/index.js';
import { O_CLOEXEC, fdFlags, runCaged } from './lab.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const spawnError = (fn: () => unknown): NetnsError => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof NetnsError, `expected a NetnsError, got ${String(err)}`);
    return err;
  }
  assert.fail('spawn did not throw');
};

describe('spawnInCage', function () {
  let fd: number;
  let dir: string;

  before(() => {
    fd = createNetns();
    const nl = Rtnl.open(fd);
    nl.setUp('lo');
    nl.close();
    dir = mkdtempSync(join(tmpdir(), `wct${process.pid}x`));
  });

  after(() => {
    if (fd !== undefined) closeSync(fd);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the command in the cage namespace, which shows only its own links', async () => {
    const r = await runCaged({ file: 'sh', args: ['-c', 'ip -o link; readlink /proc/self/ns/net'], netnsFd: fd });
    assert.deepEqual(r.status, { code: 0, signal: null });
    const names = r.stdout
      .split('\n')
      .filter((l) => /^\d+: /.test(l))
      .map((l) => l.split(': ')[1]);
    assert.deepEqual(names, ['lo']);
    assert.equal(r.stdout.trim().split('\n').at(-1), readlinkSync(`/proc/self/fd/${fd}`));
  });

  it('reports the pid it started', async () => {
    const child = spawnInCage({ file: 'sh', args: ['-c', 'echo $$ > "$0"', join(dir, 'pid')], netnsFd: fd });
    await child.wait();
    assert.equal(readFileSync(join(dir, 'pid'), 'utf8').trim(), String(child.pid));
  });

  it('reports exit codes 0 and 3', async () => {
    assert.deepEqual((await runCaged({ file: 'true', netnsFd: fd })).status, { code: 0, signal: null });
    assert.deepEqual((await runCaged({ file: 'sh', args: ['-c', 'exit 3'], netnsFd: fd })).status, { code: 3, signal: null });
  });

  it('reports a signal death as the signal', async () => {
    const r = await runCaged({ file: 'sh', args: ['-c', 'kill -KILL $$'], netnsFd: fd });
    assert.deepEqual(r.status, { code: null, signal: 'SIGKILL' });
  });

  it('signals through the pidfd and stops once reaped', async () => {
    const child = spawnInCage({ file: 'sleep', args: ['30'], netnsFd: fd });
    assert.equal(child.kill('SIGTERM'), true);
    assert.deepEqual(await child.wait(), { code: null, signal: 'SIGTERM' });
    assert.equal(child.kill('SIGTERM'), false);
  });

  it('waits without blocking the event loop', async () => {
    const child = spawnInCage({ file: 'sleep', args: ['0.3'] });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    await child.wait();
    clearInterval(timer);
    assert.ok(ticks >= 5, `event loop ticked ${ticks} times during a 300 ms wait`);
  });

  it('fails with ENOENT (exit 127) for a missing command', () => {
    for (const file of ['wirecage-no-such-command', '/nonexistent/bin/tool']) {
      const err = spawnError(() => spawnInCage({ file, netnsFd: fd }));
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'execve');
      assert.match(err.message, new RegExp(`running ${file}`));
      assert.equal(exitCodeForSpawnError(err), 127);
    }
  });

  it('fails with EACCES (exit 126) for a file that is not executable', () => {
    const script = join(dir, 'not-executable');
    writeFileSync(script, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const err = spawnError(() => spawnInCage({ file: script, netnsFd: fd }));
    assert.equal(err.code, 'EACCES');
    assert.equal(exitCodeForSpawnError(err), 126);
    assert.equal(exitCodeForSpawnError(spawnError(() => spawnInCage({ file: dir }))), 126);
  });

  it('searches PATH like execvp: skips a non-executable match for a later executable one', async () => {
    const [a, b] = [join(dir, 'p1'), join(dir, 'p2')];
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, 'wcttool'), '#!/bin/sh\necho wrong\n', { mode: 0o644 });
    writeFileSync(join(b, 'wcttool'), '#!/bin/sh\necho right\n', { mode: 0o755 });
    const r = await runCaged({ file: 'wcttool', env: { PATH: `${a}:${b}:/usr/bin:/bin` } });
    assert.equal(r.stdout, 'right\n');
    const only = spawnError(() => spawnInCage({ file: 'wcttool', env: { PATH: a } }));
    assert.equal(only.code, 'EACCES');
  });

  it('passes argv0, env and cwd exactly', async () => {
    const r = await runCaged({
      file: '/bin/sh',
      argv0: 'caged-sh',
      args: ['-c', 'echo "$0|$FOO|$(pwd)|$HOME"'],
      env: { FOO: 'bar baz', PATH: '/usr/bin:/bin' },
      cwd: dir,
      netnsFd: fd,
    });
    // HOME is set here but not passed: the command gets exactly the env it was given.
    assert.equal(r.stdout, `caged-sh|bar baz|${dir}|\n`);
  });

  it('drops to the requested user and groups', async () => {
    const r = await runCaged({ file: 'sh', args: ['-c', 'id -u; id -g; id -G'], user: { uid: 65534, gid: 65534, groups: [] } });
    assert.equal(r.stdout, '65534\n65534\n65534\n');
  });

  it('closes every fd above 2, also those not marked close-on-exec', async () => {
    // Node marks every fd it creates or inherits close-on-exec; native code (a TUN queue, say) may not.
    const [r, w] = pipe(false);
    try {
      assert.equal(fdFlags(r) & O_CLOEXEC, 0);
      const out = await runCaged({ file: 'ls', args: ['/proc/self/fd'], netnsFd: fd });
      // 0-2 and the directory ls itself opened.
      assert.deepEqual(out.stdout.trim().split(/\s+/), ['0', '1', '2', '3']);
    } finally {
      closeSync(r);
      closeSync(w);
    }
  });

  it('kills the command when this process dies (parent-death signal)', async () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fixture('orphan.ts')], { encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL');
    const pid = Number(r.stdout.trim());
    assert.ok(pid > 0, `fixture printed ${JSON.stringify(r.stdout)}`);
    const deadline = Date.now() + 5000;
    while (isAlive(pid) && Date.now() < deadline) await delay(20);
    assert.equal(isAlive(pid), false, `sleep ${pid} survived its parent`);
  });

  describe('mounts', () => {
    let outside: string;
    let source: string;

    before(() => {
      outside = join(dir, 'resolv.conf');
      source = join(dir, 'cage-resolv.conf');
      writeFileSync(outside, 'nameserver 192.0.2.53 # host\n');
      writeFileSync(source, 'nameserver 10.64.0.1 # cage\n');
    });

    it('bind-mounts a file only inside the cage', async () => {
      const r = await runCaged({ file: 'cat', args: [outside], netnsFd: fd, mounts: [{ source, target: outside }] });
      assert.equal(r.stdout, 'nameserver 10.64.0.1 # cage\n');
      assert.equal(readFileSync(outside, 'utf8'), 'nameserver 192.0.2.53 # host\n');
      assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(outside), 'the mount leaked to the host');
    });

    it('makes a read-only bind mount refuse writes', async () => {
      const r = await runCaged({
        file: 'sh',
        args: ['-c', 'echo x >> "$0"', outside],
        mounts: [{ source, target: outside, readonly: true }],
      });
      assert.equal(r.status.code, 2);
      assert.match(r.stderr, /Read-only file system/);
      assert.equal(readFileSync(source, 'utf8'), 'nameserver 10.64.0.1 # cage\n');
    });

    it('hides a directory and a file; missing paths are skipped', async () => {
      const keys = join(dir, 'keys');
      mkdirSync(keys);
      writeFileSync(join(keys, 'private.key'), 'SECRET-KEY\n', { mode: 0o600 });
      const socket = join(dir, 'nscd.socket');
      writeFileSync(socket, 'SECRET-SOCKET\n');
      const r = await runCaged({
        file: 'sh',
        args: ['-c', `ls -A "${keys}"; cat "${keys}/private.key"; cat "${socket}"; echo end`],
        netnsFd: fd,
        hide: [keys, socket, join(dir, 'does-not-exist')],
      });
      assert.equal(r.stdout, 'end\n');
      assert.match(r.stderr, /private\.key: No such file or directory/);
      assert.ok(!r.stdout.includes('SECRET') && !r.stderr.includes('SECRET'));
      assert.equal(readFileSync(join(keys, 'private.key'), 'utf8'), 'SECRET-KEY\n');
    });

    it('fails before exec (exit 125) when a mount target is missing, naming it', () => {
      const target = join(dir, 'no-such-target');
      const err = spawnError(() => spawnInCage({ file: 'true', mounts: [{ source, target }] }));
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'mount');
      assert.match(err.message, new RegExp(`bind-mounting ${source} on ${target}`));
      assert.equal(exitCodeForSpawnError(err), 125);
      assert.equal(existsSync(target), false);
    });
  });

  describe('pid namespace', () => {
    it('runs the command as pid 2 under an init, with a /proc that shows only the cage', async () => {
      const r = await runCaged({
        file: 'sh',
        args: ['-c', 'echo $$; ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "'],
        netnsFd: fd,
        pidNamespace: true,
      });
      assert.deepEqual(r.status, { code: 0, signal: null });
      // 1 init, 2 the shell, then its pipeline.
      const [pid, procs] = r.stdout.split('\n');
      assert.equal(pid, '2');
      const seen = procs!.trim().split(' ').map(Number);
      assert.deepEqual(seen.slice(0, 2), [1, 2]);
      assert.ok(seen.length <= 6, `/proc shows ${seen.length} processes: ${procs}`);
      assert.equal(
        readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .filter((l) => / \/proc /.test(l)).length,
        1,
      );
    });

    it('reports exit codes and signal deaths as without it', async () => {
      const run = (script: string) => runCaged({ file: 'sh', args: ['-c', script], netnsFd: fd, pidNamespace: true });
      assert.deepEqual((await run('exit 0')).status, { code: 0, signal: null });
      assert.deepEqual((await run('exit 3')).status, { code: 3, signal: null });
      assert.deepEqual((await run('exit 129')).status, { code: 129, signal: null });
      assert.deepEqual((await run('kill -KILL $$')).status, { code: null, signal: 'SIGKILL' });
      assert.deepEqual((await run('kill -SEGV $$')).status, { code: null, signal: 'SIGSEGV' });
    });

    it('reports exec failures as without it (127, 126)', () => {
      const missing = spawnError(() => spawnInCage({ file: 'wirecage-no-such-command', netnsFd: fd, pidNamespace: true }));
      assert.equal(missing.code, 'ENOENT');
      assert.equal(missing.syscall, 'execve');
      assert.equal(exitCodeForSpawnError(missing), 127);
      const script = join(dir, 'not-executable-pidns');
      writeFileSync(script, '#!/bin/sh\necho hi\n', { mode: 0o644 });
      const denied = spawnError(() => spawnInCage({ file: script, pidNamespace: true }));
      assert.equal(denied.code, 'EACCES');
      assert.equal(exitCodeForSpawnError(denied), 126);
    });

    it('forwards SIGTERM to the command', async () => {
      const [outR, outW] = pipe();
      let child;
      try {
        child = spawnInCage({
          file: 'sh',
          args: ['-c', 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done'],
          pidNamespace: true,
          stdio: [-1, outW, -1],
        });
      } finally {
        closeSync(outW);
      }
      const out = new Socket({ fd: outR, readable: true, writable: false });
      let text = '';
      const closed = new Promise((resolve) => out.on('close', resolve));
      // Signal once the shell has set its trap.
      await new Promise<void>((resolve) =>
        out.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('ready')) resolve();
        }),
      );
      assert.equal(child.kill('SIGTERM'), true);
      assert.deepEqual(await child.wait(), { code: 7, signal: null });
      await closed;
      assert.equal(text, 'ready\ngot TERM\n');
    });

    it('dies of a forwarded signal the command does not handle', async () => {
      // spawnInCage returns once sleep has been exec'd: relay and init already forward.
      const child = spawnInCage({ file: 'sleep', args: ['30'], pidNamespace: true });
      child.kill('SIGTERM');
      assert.deepEqual(await child.wait(), { code: null, signal: 'SIGTERM' });
    });

    it('kills the background children too when this process dies', async () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fixture('orphan-tree.ts')], { encoding: 'utf8' });
      assert.equal(r.signal, 'SIGKILL');
      const pid = Number(r.stdout.trim());
      assert.ok(pid > 0, `fixture printed ${JSON.stringify(r.stdout)}`);
      const deadline = Date.now() + 5000;
      while (isAlive(pid) && Date.now() < deadline) await delay(20);
      assert.equal(isAlive(pid), false, `background sleep ${pid} survived`);
    });
  });

  it('validates options before forking', () => {
    assert.throws(() => spawnInCage({ file: '' }), /file must not be empty/);
    assert.throws(() => spawnInCage({ file: 'true', args: ['a\0b'] }), /must not contain NUL/);
  });
});

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
