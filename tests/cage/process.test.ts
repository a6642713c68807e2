// wirecage as a process: exit codes, signals, what happens when it is
// killed, a terminal, --user, and its own failures (handshake, config).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { alive } from '@wirecage/netns/lab';
import { formatCommand, run, runOrThrow } from '../lib/exec.js';
import { childrenOf } from '../lib/proc.js';
import { waitFor } from '../lib/wait.js';
import { WIRECAGE_BIN, cageKey, serverPeer, spawnWirecage, wgQuickText, wirecage, writeWgQuick } from '../lib/cage.js';
import { cageSuite } from '../lib/cage-suite.js';
import { writeSecretFile } from '../lib/wg.js';

/**
 * Host pids of the processes whose argv is exactly `argv`. The command runs in its own pid
 * namespace, so its `$$` means nothing out here; a unique argument finds it instead.
 */
function pidsWithArgv(argv: string[]): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => hasArgv(pid, argv));
}

function hasArgv(pid: number, argv: string[]): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === argv.join('\0') + '\0';
  } catch {
    return false;
  }
}

/** Whether `pid`'s event loop polls a pidfd it holds (an epoll instance lists the pidfd as a target). */
function waitsOnPidfd(pid: number): boolean {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`);
    const pidfds = new Set(fds.filter((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[pidfd]'));
    return fds.some((fd) =>
      [...readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').matchAll(/^tfd:\s+(\d+)\s/gm)].some((m) => pidfds.has(m[1]!)),
    );
  } catch {
    return false; // an fd closed while we looked, or the process is gone: look again
  }
}

describe('wirecage run: process', function () {
  this.timeout(60_000);
  const t = cageSuite('proc');

  const cage = (...cmd: string[]) => wirecage(t.c.client, ['-c', t.conf, '--', ...cmd]);

  describe('exit status', () => {
    it("is the command's own: 0 and 3", async () => {
      assert.equal((await cage('true')).code, 0);
      const r = await cage('sh', '-c', 'echo out; exit 3');
      assert.deepEqual([r.code, r.stdout], [3, 'out\n']);
    });

    it('is 126 for a file that cannot be executed', async () => {
      // The lab's directory is under /tmp, which is private in the cage: shared by name.
      const file = join(t.c.dir, 'not-executable');
      await writeFile(file, '#!/bin/sh\necho ran\n', { mode: 0o644 });
      const r = await wirecage(t.c.client, ['-c', t.conf, '--share', file, '--', file]);
      assert.equal(r.code, 126, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^wirecage: .*EACCES/m);
    });

    it('is 127 for a command that does not exist', async () => {
      const r = await cage('wct-no-such-command');
      assert.equal(r.code, 127, r.stderr);
      assert.match(r.stderr, /^wirecage: .*wct-no-such-command.*ENOENT|^wirecage: .*ENOENT.*wct-no-such-command/m);
    });

    it('is 128+9 when SIGKILL ends the command', async () => {
      const r = await cage('sh', '-c', 'kill -9 $$');
      assert.equal(r.code, 137, r.stderr);
    });
  });

  it('forwards SIGTERM to the command and exits with its status', async () => {
    // The command prints `ready` only once its trap is set.
    const p = spawnWirecage(t.c.client, ['-c', t.conf, '--', 'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done']);
    // The SIGTERM goes to wirecage's pid, by then the wirecage-userns helper (`run` execs it), which
    // passes it to its child, stage 2 (Node). Stage 2 forwards it to the cage's relay only once its
    // listeners are in place, right after the command has started: a SIGTERM before that kills
    // stage 2 (Node's default), and the helper then dies of it too. Stage 2 sets them up just before
    // it waits for the command on its pidfd, which /proc shows: that, and `ready`, is what to wait
    // for. (The relay and the cage's init block the signals before they fork: nothing to wait for.)
    await waitFor(
      () => {
        p.assertRunning();
        const stage2 = childrenOf(p.pid!)[0];
        return p.output().split('\n').includes('ready') && stage2 !== undefined && waitsOnPidfd(stage2);
      },
      { what: 'the command to start in the cage and stage 2 to wait for it', timeoutMs: 15_000, describe: () => p.describe() },
    );
    process.kill(p.pid!, 'SIGTERM');
    const exit = await p.exited;
    assert.deepEqual([exit.code, exit.signal], [42, null], p.describe());
  });

  it('takes the command down with it when SIGKILL ends wirecage', async () => {
    const argv = ['sh', '-c', 'echo started; while :; do sleep 0.1; done', `wct-loop-${process.pid}-${Date.now()}`];
    const p = spawnWirecage(t.c.client, ['-c', t.conf, '--', ...argv]);
    const pid = await waitFor(
      () => {
        p.assertRunning();
        return p.output().includes('started') && pidsWithArgv(argv)[0];
      },
      { what: 'the command to start in the cage', timeoutMs: 15_000, describe: () => p.describe() },
    );
    // Asked from outside: `ip netns exec` would put the asking process itself into the namespace.
    const pidsInClient = async () => (await runOrThrow('ip', ['netns', 'pids', t.c.client.name])).stdout.trim();
    const before = (await pidsInClient()).split('\n');
    assert.ok(before.length >= 2, `expected wirecage's stages in ${t.c.client.name}, found ${before.join(' ')}`);
    assert.ok(alive(pid));

    process.kill(p.pid!, 'SIGKILL');
    assert.equal((await p.exited).signal, 'SIGKILL');
    await waitFor(async () => !alive(pid) && (await pidsInClient()) === '', {
      what: `the command (pid ${pid}) and wirecage's stage 2 to die`,
      describe: async () =>
        `left in ${t.c.client.name}: ${(await run('ip', ['netns', 'pids', t.c.client.name])).stdout}; command alive: ${alive(pid)}`,
    });
  });

  it("takes the command's background children down too when SIGKILL ends wirecage", async () => {
    const argv = ['sh', '-c', 'sleep 1000 & echo started; wait', `wct-bg-${process.pid}-${Date.now()}`];
    const p = spawnWirecage(t.c.client, ['-c', t.conf, '--', ...argv]);
    const sleep = await waitFor(
      () => {
        p.assertRunning();
        const sh = pidsWithArgv(argv)[0];
        return sh && childrenOf(sh).find((pid) => hasArgv(pid, ['sleep', '1000']));
      },
      { what: 'the background sleep to start in the cage', timeoutMs: 15_000, describe: () => p.describe() },
    );
    assert.ok(alive(sleep));

    process.kill(p.pid!, 'SIGKILL');
    assert.equal((await p.exited).signal, 'SIGKILL');
    await waitFor(() => !alive(sleep), {
      what: `the background sleep (pid ${sleep}) to die with the cage`,
      describe: () => readFileSync(`/proc/${sleep}/status`, 'utf8'),
    });
  });

  it('runs an interactive shell under a terminal when no command is given', async () => {
    // script(1) gives wirecage a pseudo-terminal; the shell reads its commands from it.
    const inner = formatCommand(process.execPath, [WIRECAGE_BIN, 'run', '-c', t.conf]);
    const r = await t.c.client.run('script', ['-qec', inner, '/dev/null'], {
      input: "test -t 0 && printf '%s-%s\\n' tty ok; exit 5\n",
      env: { PATH: process.env.PATH, SHELL: '/bin/sh', TERM: 'dumb' },
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 5, r.stdout + r.stderr);
    // Only the shell's output has the dash (the terminal echoes the input line too, after the prompt).
    assert.match(r.stdout, /tty-ok\r?$/m);
  });

  it('runs the command as --user nobody when started as root', async () => {
    const r = await wirecage(t.c.client, ['-c', t.conf, '--user', 'nobody', '--', 'sh', '-c', 'id -u; id -g; id -G']);
    assert.equal(r.code, 0, r.stderr);
    const nobody = (await t.c.client.runOrThrow('id', ['nobody'])).stdout;
    const [uid, gid] = [/uid=(\d+)/.exec(nobody)![1], /gid=(\d+)/.exec(nobody)![1]];
    assert.deepEqual(r.stdout.trim().split('\n'), [uid, gid, gid]);
    assert.equal(uid, '65534');
  });

  it('refuses --root with --user: one says uid 0, the other that user', async () => {
    const r = await wirecage(t.c.client, ['-c', t.conf, '--root', '--user', 'nobody', '--', 'true']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /--root and --user/);
  });

  describe('its own failures: exit 125', () => {
    it('names the endpoint when no handshake completes', async () => {
      const me = t.srv.clientAddress(3);
      const silent = await writeWgQuick(t.c.dir, 'silent.conf', { PrivateKey: t.key.privateKey, Address: `${me.v4}/32`, DNS: t.srv.v4 }, [
        { ...serverPeer(t.srv), Endpoint: `${t.srv.outer}:9` },
      ]);
      const started = Date.now();
      const r = await wirecage(t.c.client, ['-c', silent, '--wait-handshake', '1', '--', 'echo', 'ran']);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`no WireGuard handshake with ${t.srv.outer.replace(/\./g, '\\.')}:9 within 1 s`));
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);

      // The server is up but does not know this key.
      const stranger = await cageKey(t.c.dir, 'stranger');
      const unknown = await writeWgQuick(
        t.c.dir,
        'unknown.conf',
        { PrivateKey: stranger.privateKey, Address: `${me.v4}/32`, DNS: t.srv.v4 },
        [serverPeer(t.srv)],
      );
      const u = await wirecage(t.c.client, ['-c', unknown, '--wait-handshake', '1', '--', 'echo', 'ran']);
      assert.equal(u.code, 125, u.stderr);
      assert.match(u.stderr, new RegExp(`no WireGuard handshake with ${t.srv.endpoint.replace(/\./g, '\\.')} within 1 s`));
    });

    const badConfigs = [
      {
        name: 'an unknown key',
        extra: { Foo: 'bar' },
        line: 5,
        message: /Foo: unknown key in \[Interface\]/,
      },
      {
        name: 'a PostUp hook',
        extra: { PostUp: 'touch /tmp/wct-postup-ran' },
        line: 5,
        message: /PostUp: wirecage never runs shell hooks/,
      },
    ];
    for (const bad of badConfigs) {
      it(`refuses a config with ${bad.name}, naming file:line:key`, async () => {
        const me = t.srv.clientAddress(4);
        const file = await writeWgQuick(
          t.c.dir,
          'bad.conf',
          { PrivateKey: t.key.privateKey, Address: `${me.v4}/32`, DNS: t.srv.v4, ...bad.extra },
          [serverPeer(t.srv)],
        );
        const r = await wirecage(t.c.client, ['-c', file, '--', 'echo', 'ran']);
        assert.equal(r.code, 125, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, new RegExp(`^wirecage: ${file.replace(/[.]/g, '\\.')}:${bad.line}: `));
        assert.match(r.stderr, bad.message);
      });
    }

    it('refuses a malformed key without printing it', async () => {
      const me = t.srv.clientAddress(4);
      const notAKey = t.key.privateKey.slice(0, 40);
      const text = wgQuickText({ PrivateKey: notAKey, Address: `${me.v4}/32`, DNS: t.srv.v4 }, [serverPeer(t.srv)]);
      const file = await writeSecretFile(t.c.dir, 'badkey.conf', text);
      const r = await wirecage(t.c.client, ['-c', file, '--', 'echo', 'ran']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`^wirecage: ${file.replace(/[.]/g, '\\.')}:2: PrivateKey: `));
      assert.ok(!r.stderr.includes(notAKey), 'the malformed key was printed');
    });
  });
});
