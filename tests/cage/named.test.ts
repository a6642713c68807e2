// Named cages end to end: `run --name` starts a cage that `exec` joins (same
// tunnel, same private /tmp, same pid and user namespaces), `ps` lists and
// `stop` ends; a cage lives while any process is in it (a daemon whose
// parent exited), or with --keep until `stop`; a name runs once; and only
// the user who started a cage gets in, by the control socket or the kernel.
import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, nsRun } from '../lib/netns.js';
import { formatCommand } from '../lib/exec.js';
import type { LabProcess } from '../lib/process.js';
import { waitFor } from '../lib/wait.js';
import { asUserArgs, assertUserReads, createTestUser, type TestUser } from '../lib/test-user.js';
import { WIRECAGE_BIN, cageKey, cageLab, registerClient, serverPeer, writeWgQuick, type CageLab, type CageServer } from '../lib/cage.js';

interface PsEntry {
  name: string | null;
  source: string | null;
  tun: string;
  pid: number;
  addresses: string[];
  endpoint: string | null;
  latestHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  processes: number | null;
  startedAt: number | null;
  uptime: number | null;
  keep: boolean;
  state: string | null;
  upSince: number | null;
  lastError: string | null;
}

describe('wirecage: named cages', function () {
  this.timeout(90_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  let conf: string;
  let conf2: string;
  let me: { v4: string };
  /** The runtime dir parent (XDG_RUNTIME_DIR): this suite's own, so names never meet other suites'. */
  let xdg: string;
  let env: NodeJS.ProcessEnv;
  const running: LabProcess[] = [];
  after(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await lab.teardown();
  });

  before(async () => {
    c = await cageLab(lab);
    srv = c.servers[0]!;
    me = srv.clientAddress(2);
    const key = await cageKey(c.dir, 'named');
    await registerClient(srv, key, [me.v4]);
    conf = await writeWgQuick(c.dir, 'named.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [serverPeer(srv)]);
    const key2 = await cageKey(c.dir, 'other');
    const other = srv.clientAddress(3);
    await registerClient(srv, key2, [other.v4]);
    conf2 = await writeWgQuick(c.dir, 'other.conf', { PrivateKey: key2.privateKey, Address: `${other.v4}/32`, DNS: srv.v4 }, [
      serverPeer(srv),
    ]);
    xdg = join(c.dir, 'xdg');
    await mkdir(xdg, { mode: 0o700 });
    env = { ...process.env, XDG_RUNTIME_DIR: xdg };
  });

  const cli = (args: string[], timeoutMs = 30_000) => nsRun(c.client, process.execPath, [WIRECAGE_BIN, ...args], { env, timeoutMs });
  const exec = (name: string, ...cmd: string[]) => cli(['exec', name, '--', ...cmd]);
  const ctl = (name: string) => join(xdg, 'wirecage', `${name}.ctl`);

  async function ps(): Promise<PsEntry[]> {
    const r = await cli(['ps', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as PsEntry[];
  }

  async function psEntry(name: string): Promise<PsEntry | undefined> {
    return (await ps()).find((e) => e.name === name);
  }

  /** `run --name NAME [flags] -- CMD` in the background, once its control socket answers. */
  async function startNamed(name: string, flags: string[], cmd: string[], config = conf): Promise<LabProcess> {
    const p = c.client.spawn(process.execPath, [WIRECAGE_BIN, 'run', '-c', config, '--name', name, ...flags, '--', ...cmd], { env });
    running.push(p);
    await waitFor(
      () => {
        p.assertRunning();
        return existsSync(ctl(name));
      },
      { what: `cage ${name} to start`, timeoutMs: 20_000, describe: () => p.describe() },
    );
    return p;
  }

  async function exitOf(p: LabProcess, timeoutMs: number): Promise<number | null> {
    await waitFor(() => !p.running, { what: `${p.command} to exit`, timeoutMs, describe: () => p.describe() });
    const s = await p.exited;
    return s.code ?? (s.signal ? -1 : null);
  }

  describe('a cage two commands share', () => {
    let first: LabProcess;
    before(async () => {
      first = await startNamed(
        'work',
        [],
        [
          'sh',
          '-c',
          'echo from-first > /tmp/first; readlink /proc/self/ns/net /proc/self/ns/pid /proc/self/ns/user > /tmp/ns; exec sleep 600',
        ],
      );
    });
    after(async () => {
      await cli(['stop', 'work', '--timeout', '1']);
    });

    it("exec sees the first command's private /tmp and namespaces, and its tunnel address", async () => {
      const r = await exec(
        'work',
        'sh',
        '-c',
        'cat /tmp/first; readlink /proc/self/ns/net /proc/self/ns/pid /proc/self/ns/user | cmp - /tmp/ns && echo same-ns; ip -o -4 addr show dev wirecage',
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^from-first\nsame-ns\n/);
      assert.match(r.stdout, new RegExp(`inet ${me.v4.replace(/\./g, '\\.')}/32`));
    });

    it('exec seals its command as run seals the first: same uid, capabilities (none) and no_new_privs', async () => {
      const probe = 'id -u; grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status';
      const unnamed = await cli(['run', '-c', conf2, '--', 'sh', '-c', probe]);
      assert.equal(unnamed.code, 0, unnamed.stderr);
      assert.match(unnamed.stdout, /^CapEff:\t0000000000000000$/m);
      const r = await exec('work', 'sh', '-c', probe);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, unnamed.stdout);
    });

    it("exec --user: the user the cage's command runs as is joined; any other is refused (125), since the seal maps that id alone", async () => {
      const same = await cli(['exec', 'work', '--user', 'root', '--', 'sh', '-c', 'id -u; cat /tmp/first']);
      assert.equal(same.code, 0, same.stderr);
      assert.equal(same.stdout, '0\nfrom-first\n');
      const other = await cli(['exec', 'work', '--user', 'nobody', '--', 'sh', '-c', 'echo ran > /tmp/other; id -u']);
      assert.equal(other.code, 125, other.stdout + other.stderr);
      assert.match(other.stderr, /switching to uid 65534 \(is it mapped in the cage\?/);
      assert.equal(other.stdout, '');
      assert.equal((await exec('work', 'sh', '-c', 'test -e /tmp/other && echo ran || echo none')).stdout, 'none\n');
    });

    it('exec reaches the lab peer through the tunnel', async () => {
      const r = await exec('work', 'ping', '-n', '-c1', '-W5', srv.v4);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`from ${srv.v4.replace(/\./g, '\\.')}: icmp_seq=1`));
    });

    it('exec exits as its command did: its own status, 128+N, 126, 127; 125 for no such cage, 2 for a bad name', async () => {
      assert.equal((await exec('work', 'sh', '-c', 'echo out; exit 3')).code, 3);
      assert.equal((await exec('work', 'sh', '-c', 'kill -9 $$')).code, 137);
      // A file in the cage's private /tmp, without x bits.
      assert.equal((await exec('work', 'sh', '-c', 'printf "#!/bin/sh\\necho ran\\n" > /tmp/nx && chmod 644 /tmp/nx')).code, 0);
      const notExec = await exec('work', '/tmp/nx');
      assert.equal(notExec.code, 126, notExec.stderr);
      assert.match(notExec.stderr, /^wirecage: .*EACCES/m);
      const missing = await exec('work', 'wct-no-such-command');
      assert.equal(missing.code, 127, missing.stderr);
      assert.match(missing.stderr, /^wirecage: running wct-no-such-command: execve failed: ENOENT/m);
      const none = await exec('wct-none', 'true');
      assert.equal(none.code, 125, none.stderr);
      assert.match(none.stderr, /no cage named wct-none is running/);
      assert.equal((await exec('a/b', 'true')).code, 2);
    });

    it("exec gives its command a terminal of its own on the caller's (as run does), with the caller's size", async () => {
      const execLine = formatCommand(process.execPath, [
        WIRECAGE_BIN,
        'exec',
        'work',
        '--',
        'sh',
        '-c',
        'echo "inner=$(tty) size=$(stty size)"; exit 7',
      ]);
      const outer = `stty rows 31 cols 97; echo "outer=$(tty)"; before=$(stty -g); ${execLine}; echo "status=$?"; [ "$before" = "$(stty -g)" ] && echo same`;
      const r = await c.client.run('script', ['-qec', formatCommand('sh', ['-c', outer]), '/dev/null'], {
        env: { PATH: process.env.PATH, XDG_RUNTIME_DIR: xdg, TERM: 'dumb' },
        timeoutMs: 30_000,
      });
      const outerTty = /outer=(\S+)/.exec(r.stdout)?.[1];
      const innerTty = /inner=(\S+)/.exec(r.stdout)?.[1];
      assert.ok(outerTty?.startsWith('/dev/pts/') && innerTty?.startsWith('/dev/pts/'), r.stdout + r.stderr);
      assert.notEqual(innerTty, outerTty, "the joined command shares the caller's terminal");
      assert.match(r.stdout, /size=31 97/);
      assert.match(r.stdout, /status=7/);
      assert.match(r.stdout, /(^|\^@)same\r?$/m, "the caller's terminal was not handed back as it was");
    });

    it('exec passes SIGTERM on to its command', async () => {
      const p = c.client.spawn(
        process.execPath,
        [WIRECAGE_BIN, 'exec', 'work', '--', 'sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done'],
        { env },
      );
      running.push(p);
      await waitFor(() => (p.assertRunning(), p.output().includes('ready')), {
        what: "the exec'd command to start",
        timeoutMs: 15_000,
        describe: () => p.describe(),
      });
      process.kill(p.pid!, 'SIGTERM');
      assert.equal(await exitOf(p, 10_000), 7);
      assert.match(p.output(), /got-term/);
    });

    it('ps --json lists it with its tunnel, traffic and processes, and an unnamed cage as "-"', async () => {
      const unnamed = c.client.spawn(process.execPath, [WIRECAGE_BIN, 'run', '-c', conf2, '--', 'sh', '-c', 'echo up; exec sleep 600'], {
        env,
      });
      running.push(unnamed);
      await waitFor(() => (unnamed.assertRunning(), unnamed.output().includes('up')), {
        what: 'the unnamed cage',
        timeoutMs: 20_000,
        describe: () => unnamed.describe(),
      });
      const all = await ps();
      const e = all.find((x) => x.name === 'work');
      assert.ok(e, JSON.stringify(all));
      assert.equal(e.source, conf);
      assert.equal(e.tun, 'wirecage');
      assert.ok(existsSync(`/proc/${e.pid}`), `pid ${e.pid} (wirecage's) is not running`);
      assert.ok(first.running);
      assert.deepEqual(e.addresses, [`${me.v4}/32`]);
      assert.equal(e.endpoint, srv.endpoint);
      assert.ok(e.latestHandshake !== null && Math.abs(e.latestHandshake - Date.now() / 1000) < 120, String(e.latestHandshake));
      assert.ok(e.rxBytes > 0 && e.txBytes > 0, `${e.rxBytes} ${e.txBytes}`);
      assert.equal(e.processes, 1, 'the first command (sleep) alone is in the cage');
      assert.ok(e.uptime !== null && e.uptime >= 0 && e.startedAt !== null);
      assert.equal(e.keep, false);
      // The tunnel's healing state, as `show` has it: up since about the start, no failure seen.
      assert.equal(e.state, 'up');
      assert.ok(e.upSince !== null && e.startedAt !== null && e.upSince >= e.startedAt - 1, `${e.upSince} ${e.startedAt}`);
      assert.equal(e.lastError, null);
      const u = all.find((x) => x.source === conf2);
      assert.ok(u, JSON.stringify(all));
      assert.equal(u.name, null);
      assert.equal(u.processes, 1);
      const table = await cli(['ps']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^NAME\s+SOURCE\s+ADDRESSES\s+ENDPOINT\s+HANDSHAKE\s+RX\s+TX\s+PROCS\s+UPTIME$/m);
      assert.match(table.stdout, new RegExp(`^work\\s+${conf.replace(/[.]/g, '\\.')}\\s+${me.v4.replace(/\./g, '\\.')}/32\\s`, 'm'));
      assert.match(table.stdout, /^-\s+/m);
      await unnamed.stop();
    });

    it("a joined command is one of the cage's processes while it runs (ps counts it)", async () => {
      const p = c.client.spawn(process.execPath, [WIRECAGE_BIN, 'exec', 'work', '--', 'sh', '-c', 'echo joined; exec sleep 611'], { env });
      running.push(p);
      await waitFor(() => (p.assertRunning(), p.output().includes('joined')), {
        what: "the exec'd command to start",
        timeoutMs: 15_000,
        describe: () => p.describe(),
      });
      await waitFor(async () => (await psEntry('work'))?.processes === 2, { what: 'ps to count the joined command', timeoutMs: 10_000 });
      const seen = await exec('work', 'pgrep', '-x', '-f', 'sleep 611');
      assert.equal(seen.code, 0, "the joined command is not in the cage's pid namespace");
      await p.stop();
      await waitFor(async () => (await psEntry('work'))?.processes === 1, { what: 'ps to stop counting it', timeoutMs: 10_000 });
    });

    it('refuses a second cage with a running name (125), and a name it cannot use (2)', async () => {
      const r = await cli(['run', '-c', conf2, '--name', 'work', '--', 'true']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /a cage named work is already running/);
      const bad = await cli(['run', '-c', conf2, '--name', 'no/slash', '--', 'true']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.equal((await cli(['run', '-c', conf2, '--keep', '--', 'true'])).code, 2);
    });
  });

  it("stop ends a command that ignores SIGTERM after --timeout; run exits with the first command's status", async () => {
    const p = await startNamed('stubborn', [], ['sh', '-c', 'trap "" TERM; while :; do sleep 0.2; done']);
    const t0 = Date.now();
    const r = await cli(['stop', 'stubborn', '--timeout', '1']);
    const took = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(took >= 1000, `stop returned after ${took} ms, before its timeout`);
    // When stop returns, the cage is gone: its first command was killed (SIGKILL: 137).
    assert.equal(await exitOf(p, 10_000), 137);
    assert.equal(existsSync(ctl('stubborn')), false);
    assert.equal(await psEntry('stubborn'), undefined);
  });

  it('a daemonizing command keeps the cage (and its tunnel) until the daemon ends', async () => {
    // The first command leaves a child blocked on a fifo and exits 0.
    const p = await startNamed('daemon', [], ['sh', '-c', 'mkfifo /tmp/f; cat /tmp/f > /dev/null & exit 0']);
    await waitFor(async () => (p.assertRunning(), (await psEntry('daemon'))?.processes === 1), {
      what: 'the first command to exit, leaving its child',
      timeoutMs: 10_000,
      describe: () => p.describe(),
    });
    const r = await exec('daemon', 'ping', '-n', '-c1', '-W5', srv.v4);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(p.running, 'run --name ended with a process left in the cage');
    // Ending the daemon ends the cage; run exits with the first command's status.
    assert.equal((await exec('daemon', 'sh', '-c', 'echo > /tmp/f')).code, 0);
    assert.equal(await exitOf(p, 10_000), 0);
    assert.equal(existsSync(ctl('daemon')), false);
  });

  it("run --name signalled after its first command ended stops the cage, and exits with the first command's status", async () => {
    const p = await startNamed('signalled', [], ['sh', '-c', 'sleep 617 & exit 5']);
    await waitFor(async () => (p.assertRunning(), (await psEntry('signalled'))?.processes === 1), {
      what: 'the first command to exit',
      timeoutMs: 10_000,
      describe: () => p.describe(),
    });
    process.kill(p.pid!, 'SIGTERM');
    assert.equal(await exitOf(p, 15_000), 5);
    assert.equal(existsSync(ctl('signalled')), false);
    assert.equal((await nsRun(c.client, 'pgrep', ['-x', '-f', 'sleep 617'])).stdout, '', 'the daemon outlived its cage');
  });

  it("with --root, a joined command is uid 0 of the cage's namespace with the first command's capabilities", async () => {
    // What an unnamed cage's command holds with --root is the reference.
    const unnamed = await cli(['run', '-c', conf2, '--root', '--', 'sh', '-c', 'id -u; grep -E "^(Cap|NoNewPrivs)" /proc/self/status']);
    assert.equal(unnamed.code, 0, unnamed.stderr);
    const p = await startNamed('rooted', ['--root'], ['sleep', '600']);
    const r = await exec('rooted', 'sh', '-c', 'id -u; grep -E "^(Cap|NoNewPrivs)" /proc/self/status');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, unnamed.stdout);
    assert.match(r.stdout, /^0\n/);
    assert.equal((await cli(['stop', 'rooted', '--timeout', '1'])).code, 0);
    assert.equal(await exitOf(p, 10_000), 143);
  });

  it('--keep keeps a cage with no process in it until stop', async () => {
    const p = await startNamed('kept', ['--keep'], ['sh', '-c', 'exit 4']);
    await waitFor(async () => (p.assertRunning(), (await psEntry('kept'))?.processes === 0), {
      what: 'the first command to exit',
      timeoutMs: 10_000,
      describe: () => p.describe(),
    });
    const e = await psEntry('kept');
    assert.equal(e?.keep, true);
    const r = await exec('kept', 'sh', '-c', 'ip -o -4 addr show dev wirecage');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(p.running, 'the kept cage ended after a joined command');
    assert.equal((await cli(['stop', 'kept'])).code, 0);
    assert.equal(await exitOf(p, 10_000), 4);
  });

  describe('another user', () => {
    let user: TestUser;
    let owner: LabProcess;
    const asUser = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
      nsRun(c.client, asUserArgs(user)[0]!, [...asUserArgs(user).slice(1), process.execPath, ...args], {
        env: { ...env, ...extraEnv },
        timeoutMs: 30_000,
      });
    before(async () => {
      user = await createTestUser(lab, `${lab.id}n`);
      await assertUserReads(c.client, user, WIRECAGE_BIN);
      owner = await startNamed('mine', [], ['sleep', '613']);
    });
    after(async () => {
      await cli(['stop', 'mine', '--timeout', '1']);
    });

    it("cannot run a command in someone else's cage: wirecage exec is refused and nothing runs", async () => {
      const r = await asUser([WIRECAGE_BIN, 'exec', 'mine', '--', 'touch', '/tmp/foreign']);
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.match(r.stderr, /^wirecage: /m);
      assert.equal((await exec('mine', 'test', '-e', '/tmp/foreign')).code, 1, 'the foreign command ran in the cage');
    });

    it('is refused by the control socket itself (SO_PEERCRED) when the modes would let it connect', async () => {
      // Open the way to the socket as a careless setup would: only the peer check is left.
      const dirs = [c.dir, xdg, join(xdg, 'wirecage')];
      await Promise.all(dirs.map((d) => chmod(d, 0o711)));
      await chmod(ctl('mine'), 0o666);
      try {
        const probe = `const s=require('net').createConnection(${JSON.stringify(ctl('mine'))});s.on('connect',()=>s.write('{"op":"join"}\\n'));s.on('data',(d)=>process.stdout.write(d));s.on('error',(e)=>{console.log('error '+e.code);});`;
        const r = await asUser(['-e', probe]);
        assert.match(r.stdout, /"ok":false/, r.stdout + r.stderr);
        assert.match(r.stdout, /refused: only the user who started this cage/);
        assert.doesNotMatch(r.stdout, /"pid"/);
        const ex = await asUser([WIRECAGE_BIN, 'exec', 'mine', '--', 'touch', '/tmp/foreign']);
        assert.equal(ex.code, 125, ex.stdout + ex.stderr);
        assert.match(ex.stderr, /refused/);
        const stop = await asUser([WIRECAGE_BIN, 'stop', 'mine']);
        assert.equal(stop.code, 1, stop.stderr);
        assert.match(stop.stderr, /refused/);
      } finally {
        await Promise.all([...dirs.map((d) => chmod(d, 0o700)), chmod(ctl('mine'), 0o600)]);
      }
      assert.ok(owner.running, 'a foreign stop ended the cage');
      assert.equal((await exec('mine', 'test', '-e', '/tmp/foreign')).code, 1, 'the foreign command ran in the cage');
    });

    it("cannot enter the cage's namespaces directly either (the kernel refuses setns)", async () => {
      // Any process of the cage will do: the first command (its unique sleep) is one.
      const pids = (await nsRun(c.client, 'pgrep', ['-x', '-f', 'sleep 613'])).stdout.trim().split('\n').filter(Boolean);
      assert.ok(pids.length > 0);
      for (const pid of pids) {
        const r = await nsRun(c.client, asUserArgs(user)[0]!, [
          ...asUserArgs(user).slice(1),
          'nsenter',
          '-t',
          pid,
          '-U',
          '-n',
          '-m',
          '-p',
          'touch',
          '/tmp/foreign',
        ]);
        assert.notEqual(r.code, 0, `nsenter into pid ${pid} worked for ${user.name}`);
      }
      assert.equal((await exec('mine', 'test', '-e', '/tmp/foreign')).code, 1);
    });
  });
});
