// Every way out of the cage a command could try, each as a probe run inside
// `wirecage run` (fixtures/escape-probe.c, built here with cc): undoing the
// mounts that hide things, taking a socket from another process, reading
// another process's memory, keeping capabilities, host unix sockets, typing
// into the caller's terminal, a runtime dir planted by another user, the
// config dir. The whole set runs twice: as an unprivileged user and as root
// with --user. Every probe must fail to get out, and a probe that did not run
// to its end fails the test too, so a pass never comes from a probe that did
// nothing.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatCommand, runOrThrow } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import {
  WIRECAGE_BIN,
  cageKey,
  cageLab,
  registerClient,
  serverPeer,
  wgQuickText,
  type CageKey,
  type CageLab,
  type CageServer,
} from '../lib/cage.js';
import { ProbeReport, PtyShell, UdpSink, UnixSink, buildProbe, runWithPid, type RunResult } from '../lib/escape.js';
import { asUserArgs, assertUserReads, createHome, createTestUser, openTunToEveryone, type TestUser } from '../lib/test-user.js';

const NOBODY: TestUser = { name: 'nobody', uid: 65534, gid: 65534 };
const NO_CAPS = '0000000000000000';

interface Caller {
  title: string;
  root: boolean;
}

/** What one caller (user or root) has outside the cage, and how it starts wirecage. */
interface Side {
  home: string;
  conf: string;
  configHome: string;
  token: string;
  env: NodeJS.ProcessEnv;
  sockets: { app: UnixSink; tmp: UnixSink; bus: UnixSink; agent: UnixSink };
  /** The prefix that starts a command as the caller in the client namespace (after `ip netns exec NS`). */
  prefix: string[];
  /** `wirecage run -c CONF [--user U] FLAGS -- COMMAND` as argv. */
  wirecage(flags: readonly string[], command: readonly string[]): string[];
}

describe('wirecage run: no way out of the cage', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  let key: CageKey;
  let user: TestUser;
  /** The test user's home: every file of the test that the command might see lies here. */
  let base: string;
  let probe: string;
  /** Where stolen sockets would send to: an address of the namespace wirecage runs in, which the cage cannot route to. */
  let udp: UdpSink;
  after(() => lab.teardown());

  before(async function () {
    this.timeout(60_000);
    c = await cageLab(lab);
    srv = c.servers[0]!;
    user = await createTestUser(lab, `${lab.id}e`);
    await openTunToEveryone(lab);
    base = await createHome(lab, user);
    probe = await buildProbe(await dir(join(base, 'bin'), null, 0o755));
    await assertUserReads(c.client, user, WIRECAGE_BIN);
    key = await cageKey(c.dir, 'escape');
    await registerClient(srv, key, [srv.clientAddress(2).v4]);
    udp = await UdpSink.start(c.client, srv.clientOuter);
  });

  /** A directory with this owner and mode (made by the test, which runs as root). */
  async function dir(path: string, owner: TestUser | null, mode: number): Promise<string> {
    await mkdir(path, { recursive: true });
    if (owner) await chown(path, owner.uid, owner.gid);
    await chmod(path, mode);
    return path;
  }

  async function file(path: string, content: string, owner: TestUser): Promise<string> {
    await writeFile(path, content, { mode: 0o600 });
    await chown(path, owner.uid, owner.gid);
    return path;
  }

  async function setUp(caller: Caller, tag: string): Promise<Side> {
    // The caller's files belong to the user in both cases: as root with --user they stand for a
    // `sudo -E wirecage run --user alice` on alice's files, which the command (alice) could read
    // whenever the cage failed to hide them.
    const home = await dir(join(base, `${tag}-home`), user, 0o700);
    const tmp = await dir(join(home, 'tmp'), user, 0o700);
    const me = srv.clientAddress(2);
    const conf = await file(
      join(home, 'cage.conf'),
      wgQuickText({ PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [serverPeer(srv)]),
      user,
    );
    const configHome = await dir(join(home, '.config'), user, 0o700);
    const wcDir = await dir(join(configHome, 'wirecage'), user, 0o700);
    await dir(join(wcDir, 'keys'), user, 0o700);
    const token = `wct-token-${lab.token}-${tag}`;
    await file(
      join(wcDir, 'config.toml'),
      `version = 1\n\n[servers.lab]\napi_url = "http://${srv.outer}:8443"\ntoken = "${token}"\n`,
      user,
    );
    await file(join(wcDir, 'keys', 'lab.key'), `${key.privateKey}\n`, user);
    // Root's runtime dir is root's own; 0711 so that the --user command could reach a socket in it
    // if the cage left it there (otherwise file permissions alone would keep it out, proving nothing).
    const runtime = caller.root ? await dir(join(base, `${tag}-run`), null, 0o711) : await dir(join(home, 'run'), user, 0o700);
    const access = caller.root ? { mode: 0o777 } : { owner: user, mode: 0o600 };
    const sockets = {
      app: await UnixSink.listen(lab, join(runtime, 'app.sock'), access),
      tmp: await UnixSink.listen(lab, join('/tmp', `${lab.id}-${tag}.sock`), { mode: 0o777 }),
      bus: await UnixSink.listen(lab, join(runtime, 'bus'), access),
      agent: await UnixSink.listen(lab, join(runtime, 'ssh-agent.sock'), access),
    };
    lab.onTeardown(() => rm(sockets.tmp.path, { force: true }));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: home,
      TMPDIR: tmp,
      XDG_RUNTIME_DIR: runtime,
      XDG_CONFIG_HOME: configHome,
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${sockets.bus.path}`,
      SSH_AUTH_SOCK: sockets.agent.path,
      LANG: 'C.UTF-8',
    };
    const prefix = caller.root ? [] : asUserArgs(user);
    return {
      home,
      conf,
      configHome,
      token,
      env,
      sockets,
      prefix,
      wirecage: (flags, command) => [
        process.execPath,
        WIRECAGE_BIN,
        'run',
        '-c',
        conf,
        // --root runs the command as uid 0 and so excludes --user: root's --root runs are root's own.
        ...(caller.root && !flags.includes('--root') ? ['--user', user.name] : []),
        ...flags,
        '--',
        ...command,
      ],
    };
  }

  for (const caller of [
    { title: 'as an unprivileged user', root: false },
    { title: 'as root with --user', root: true },
  ] satisfies Caller[]) {
    describe(caller.title, () => {
      const tag = caller.root ? 'root' : 'user';
      let side: Side;

      before(async () => {
        side = await setUp(caller, tag);
      });

      /** Runs the probe (or any command) in the cage as the caller; `env` adds to or replaces the caller's. */
      async function cage(
        flags: readonly string[],
        command: readonly string[],
        opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
      ): Promise<RunResult> {
        return runWithPid('ip', ['netns', 'exec', c.client.name, ...side.prefix, ...side.wirecage(flags, command)], {
          env: { ...side.env, ...opts.env },
          cwd: '/',
          input: opts.input,
        });
      }

      async function runProbe(
        flags: readonly string[],
        actions: readonly string[],
        opts: { input?: string } = {},
      ): Promise<{ r: RunResult; p: ProbeReport }> {
        const r = await cage(flags, [probe, ...actions], opts);
        const p = new ProbeReport(r.stdout);
        assert.ok(
          p.complete,
          `the probe did not run to its end in the cage (exit ${r.code}${r.signal ? `, ${r.signal}` : ''}):\n${r.stdout}${r.stderr}`,
        );
        assert.equal(r.code, 0, r.stderr);
        return { r, p };
      }

      /** The words of a probe line as "ok ..." or an errno name, for messages. */
      const result = (words: string[]) => words.join(' ');

      describe('unhiding what the cage hides', () => {
        it('cannot unmount what hides the config file, nor read it', async () => {
          const { r, p } = await runProbe([], ['umount', side.conf, ',', 'cat', side.conf]);
          const umount = p.get('umount', side.conf);
          assert.ok(
            !(r.stdout + r.stderr).includes(key.privateKey),
            `the private key was read in the cage (umount ${side.conf}: ${result(umount)})`,
          );
          assert.notEqual(umount[0], 'ok', `umount ${side.conf} succeeded in the cage: the hiding mount can be undone`);
          const cat = p.get('cat', side.conf);
          assert.ok(cat[0] !== 'ok' || cat[1] === '0', `${side.conf} is readable in the cage (${result(cat)})`);
        });

        it('cannot unmount its /proc to see the processes outside the cage', async () => {
          const { r, p } = await runProbe([], ['pids', ',', 'umount', '-l', '/proc', ',', 'pids']);
          const umount = p.get('umount', '/proc');
          const [before, after] = p.all('pids').map((ws) => ws.map(Number));
          const [init, initAfter] = p.all('cmdline1').map(result);
          // Pids outside the cage: wirecage itself (its pid is the one it was started with) and this test.
          const outside = [r.pid, process.pid];
          const seen = (pids: number[] | undefined) => outside.filter((pid) => pids?.includes(pid));
          assert.deepEqual(
            seen(after),
            [],
            `after umount -l /proc (${result(umount)}) the cage sees pids ${seen(after).join(', ')} of the host`,
          );
          assert.deepEqual(seen(before), [], `the cage's /proc shows pids ${seen(before).join(', ')} of the host`);
          assert.deepEqual(
            { pids: after, init: initAfter },
            { pids: before, init },
            `umount -l /proc (${result(umount)}) replaced the cage's /proc with another`,
          );
          assert.notEqual(umount[0], 'ok', 'umount -l /proc succeeded in the cage');
        });

        it('cannot unmount them either as uid 0 of its own user namespace (--root)', async () => {
          const { r, p } = await runProbe(
            ['--root'],
            ['status', ',', 'umount', side.conf, ',', 'cat', side.conf, ',', 'umount', '-l', '/proc', ',', 'pids'],
          );
          const conf = p.get('umount', side.conf);
          const proc = p.get('umount', '/proc');
          assert.ok(
            !(r.stdout + r.stderr).includes(key.privateKey),
            `the private key was read in the cage under --root (umount: ${result(conf)})`,
          );
          assert.notEqual(conf[0], 'ok', `umount ${side.conf} succeeded under --root: the hiding mount can be undone`);
          assert.notEqual(proc[0], 'ok', 'umount -l /proc succeeded under --root');
          assert.ok(!p.get('pids').map(Number).includes(r.pid), "after umount -l /proc the cage sees wirecage's own pid");
          // Only as uid 0 with capabilities in its own namespace does the refusal say the mounts are locked.
          assert.equal(p.get('status', 'uid')[0], '0', `under --root the command is not uid 0 (umount: ${result(conf)}, ${result(proc)})`);
          assert.deepEqual(
            [result(conf), result(proc)],
            ['EINVAL', 'EINVAL'],
            'the mounts the command inherits should be locked (EINVAL), as in a user namespace of its own',
          );
        });

        if (caller.root) {
          // Uid 0 of the host writes these by file mode alone, without a capability: core_pattern
          // names a program the kernel runs as root outside every namespace, sysrq reboots.
          it("cannot open the kernel-wide /proc files for writing when it runs as the host's root (--root)", async () => {
            // (/proc/sysrq-trigger exists only on kernels built with magic SysRq.)
            const files = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/hostname', '/proc/sysrq-trigger'].filter((f) =>
              existsSync(f),
            );
            const { p } = await runProbe(['--root'], [...files.flatMap((f) => ['openw', f, ',']), 'status']);
            assert.equal(p.get('status', 'uid')[0], '0');
            for (const f of files) assert.deepEqual(p.get('openw', f), ['EROFS'], `${f} is writable from the cage`);
          });
        }

        it('cannot read the wirecage config dir ($XDG_CONFIG_HOME/wirecage) in a -c run', async () => {
          const wc = join(side.configHome, 'wirecage');
          const { r, p } = await runProbe(
            [],
            ['cat', join(wc, 'config.toml'), ',', 'ls', join(wc, 'keys'), ',', 'cat', join(wc, 'keys', 'lab.key')],
          );
          const all = r.stdout + r.stderr;
          assert.ok(!all.includes(side.token), `the servers' token in ${wc}/config.toml was read in the cage`);
          assert.ok(!all.includes(key.privateKey), `a key in ${wc}/keys was read in the cage`);
          const ls = p.get('ls', join(wc, 'keys'));
          assert.ok(!ls.includes('lab.key'), `${wc}/keys can be listed in the cage: ${result(ls)}`);
        });
      });

      describe('other processes', () => {
        it('cannot take a socket from another process (pidfd_getfd) and send through it', async () => {
          const earlier = udp.foreign().length;
          const { p } = await runProbe([], ['steal', udp.address, String(udp.port)]);
          await udp.settle();
          assert.deepEqual(
            udp.foreign().slice(earlier),
            [],
            `datagrams left the cage through stolen sockets:\n${p.all('steal').map(result).join('\n')}`,
          );
          // The probe has no descendants: it must get no fd at all from anyone else, pid 1 above all.
          const got = p
            .all('steal')
            .filter(([pid, what]) => Number(pid) !== p.pid && what === 'got')
            .filter(([, , n]) => n !== '0');
          assert.deepEqual(got.map(result), [], 'the command took fds of processes that are not its own (pid got N sockets M sent K)');
        });

        it("cannot read the memory, environment or root of the cage's init (/proc/1)", async () => {
          const { r, p } = await runProbe([], ['memory', side.conf], { input: `${key.privateKey}\n` });
          assert.equal(p.get('memory', 'needle-length')[0], String(key.privateKey.length));
          const found = p.lines.filter((l) => l.includes('NEEDLE-FOUND'));
          assert.deepEqual(found, [], 'the private key was found in another process of the cage');
          assert.ok(!r.stderr.includes(key.privateKey));
          const init = ['mem', 'environ', 'root'].map((what) => `${what} 1 ${result(p.get(what, '1'))}`);
          assert.deepEqual(
            init.filter((l) => / 1 ok/.test(l) || / open-ok /.test(l)),
            [],
            "the command can read /proc/1 (the cage's init, which wirecage started)",
          );
        });

        it("holds no capability, can gain none, and runs as the caller's uid", async () => {
          const r = await cage([], ['sh', '-c', '"$0" status && id -u', probe]);
          const p = new ProbeReport(r.stdout);
          assert.ok(p.complete, `the probe did not run in the cage (exit ${r.code}): ${r.stdout}${r.stderr}`);
          const field = (k: string) => p.get('status', k)[0];
          const status = {
            uid: field('uid'),
            CapEff: field('CapEff'),
            CapPrm: field('CapPrm'),
            CapInh: field('CapInh'),
            CapAmb: field('CapAmb'),
            NoNewPrivs: field('NoNewPrivs'),
            // SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: uid 0 would confer nothing at execve either.
            noRootLocked: (Number(field('securebits')) & 3) === 3,
            'id -u': r.stdout.trim().split(/\r?\n/).at(-1),
          };
          const uid = String(user.uid);
          assert.deepEqual(
            status,
            { uid, CapEff: NO_CAPS, CapPrm: NO_CAPS, CapInh: NO_CAPS, CapAmb: NO_CAPS, NoNewPrivs: '1', noRootLocked: true, 'id -u': uid },
            'the command keeps privileges it could use against the cage',
          );
        });

        // The bounding set stays full on purpose (an empty one makes the kernel refuse to execute
        // binaries with file capabilities, Debian's ping among them): what must hold is that no
        // execve raises anything, neither a setuid-root binary nor one with file capabilities.
        it('gains nothing from a setuid-root or file-capability binary', async () => {
          const setuid = join(base, 'bin', 'probe-setuid');
          const fcaps = join(base, 'bin', 'probe-fcaps');
          for (const copy of [setuid, fcaps]) await runOrThrow('cp', [probe, copy]);
          await chown(setuid, 0, 0);
          await chmod(setuid, 0o4755);
          await runOrThrow('setcap', ['cap_net_raw,cap_sys_admin,cap_sys_ptrace+ep', fcaps]);
          for (const copy of [setuid, fcaps]) {
            const r = await cage([], [copy, 'status']);
            const p = new ProbeReport(r.stdout);
            assert.ok(p.complete, `${copy} did not run in the cage (exit ${r.code}): ${r.stdout}${r.stderr}`);
            const got = { euid: p.get('status', 'euid')[0], CapEff: p.get('status', 'CapEff')[0], CapPrm: p.get('status', 'CapPrm')[0] };
            assert.deepEqual(got, { euid: String(user.uid), CapEff: NO_CAPS, CapPrm: NO_CAPS }, `${copy} raised the command's privileges`);
          }
        });

        it('with --root is uid 0 (of its own namespace) and still has no_new_privs', async () => {
          const r = await cage(['--root'], ['sh', '-c', '"$0" status && id -u', probe]);
          const p = new ProbeReport(r.stdout);
          assert.ok(p.complete, `the probe did not run in the cage (exit ${r.code}): ${r.stdout}${r.stderr}`);
          assert.deepEqual(
            {
              uid: p.get('status', 'uid')[0],
              NoNewPrivs: p.get('status', 'NoNewPrivs')[0],
              'id -u': r.stdout.trim().split(/\r?\n/).at(-1),
            },
            { uid: '0', NoNewPrivs: '1', 'id -u': '0' },
            '--root should make the command uid 0 of its own namespace, still under no_new_privs',
          );
        });
      });

      describe('host unix sockets', () => {
        /** Connections each listener accepted during `fn`, counted once every pending one is in. */
        async function accepted(fn: () => Promise<void>): Promise<Record<keyof Side['sockets'], number>> {
          const names = Object.keys(side.sockets) as (keyof Side['sockets'])[];
          const before = await Promise.all(names.map((n) => side.sockets[n].settle()));
          await fn();
          const after = await Promise.all(names.map((n) => side.sockets[n].settle()));
          return Object.fromEntries(names.map((n, i) => [n, after[i]! - before[i]!])) as Record<keyof Side['sockets'], number>;
        }

        it("cannot connect to a socket in the caller's runtime dir nor in /tmp", async () => {
          let p!: ProbeReport;
          const n = await accepted(async () => {
            ({ p } = await runProbe([], ['connect', side.sockets.app.path, ',', 'connect', side.sockets.tmp.path]));
          });
          const app = p.get('connect', side.sockets.app.path);
          const tmp = p.get('connect', side.sockets.tmp.path);
          assert.notEqual(app[0], 'ok', `the command connected to ${side.sockets.app.path} in the caller's runtime dir`);
          assert.notEqual(tmp[0], 'ok', `the command connected to ${side.sockets.tmp.path} in the host's /tmp`);
          assert.deepEqual([n.app, n.tmp], [0, 0], "the host's listeners accepted connections from the cage");
        });

        it('has no session bus: DBUS_SESSION_BUS_ADDRESS is gone and its socket unreachable', async () => {
          let p!: ProbeReport;
          const n = await accepted(async () => {
            ({ p } = await runProbe([], ['env', 'DBUS_SESSION_BUS_ADDRESS', ',', 'connect', side.sockets.bus.path]));
          });
          assert.deepEqual(p.get('env', 'DBUS_SESSION_BUS_ADDRESS'), ['unset'], 'the session bus address reached the cage');
          assert.notEqual(p.get('connect', side.sockets.bus.path)[0], 'ok', 'the command connected to the session bus');
          assert.equal(n.bus, 0, 'the session bus accepted a connection from the cage');
        });

        it('has no ssh agent by default', async () => {
          let p!: ProbeReport;
          const n = await accepted(async () => {
            ({ p } = await runProbe([], ['env', 'SSH_AUTH_SOCK', ',', 'connect', side.sockets.agent.path]));
          });
          assert.deepEqual(p.get('env', 'SSH_AUTH_SOCK'), ['unset'], 'SSH_AUTH_SOCK reached the cage without --ssh-agent');
          assert.notEqual(p.get('connect', side.sockets.agent.path)[0], 'ok', 'the command connected to the ssh agent without --ssh-agent');
          assert.equal(n.agent, 0, 'the ssh agent accepted a connection from the cage');
        });

        it('reaches the ssh agent with --ssh-agent, and nothing else', async () => {
          let p!: ProbeReport;
          const n = await accepted(async () => {
            ({ p } = await runProbe(
              ['--ssh-agent'],
              ['env', 'SSH_AUTH_SOCK', ',', 'connect', '$SSH_AUTH_SOCK', ',', 'connect', side.sockets.bus.path],
            ));
          });
          assert.equal(p.get('env', 'SSH_AUTH_SOCK')[0], 'ok', 'SSH_AUTH_SOCK is missing in the cage under --ssh-agent');
          assert.equal(
            p.get('connect', '$SSH_AUTH_SOCK')[0],
            'ok',
            `the command could not reach the agent: ${result(p.get('connect', '$SSH_AUTH_SOCK'))}`,
          );
          assert.deepEqual(n, { app: 0, tmp: 0, bus: 0, agent: 1 });
        });

        it('reaches exactly the socket given with --share', async () => {
          let p!: ProbeReport;
          const shared = side.sockets.app.path;
          const n = await accepted(async () => {
            ({ p } = await runProbe(
              ['--share', shared],
              ['connect', shared, ',', 'connect', side.sockets.tmp.path, ',', 'connect', side.sockets.bus.path],
            ));
          });
          assert.equal(
            p.get('connect', shared)[0],
            'ok',
            `--share ${shared}: the command could not connect to it: ${result(p.get('connect', shared))}`,
          );
          assert.notEqual(p.get('connect', side.sockets.tmp.path)[0], 'ok', `--share ${shared} let ${side.sockets.tmp.path} through too`);
          assert.notEqual(p.get('connect', side.sockets.bus.path)[0], 'ok', `--share ${shared} let the session bus through too`);
          assert.deepEqual(n, { app: 1, tmp: 0, bus: 0, agent: 0 });
        });
      });

      describe("the caller's terminal (TIOCSTI)", () => {
        let n = 0;
        before(async function () {
          // With legacy TIOCSTI off (kernels from 6.2 can be built so) the kernel refuses it to anyone
          // without CAP_SYS_ADMIN, and the probe would pass for the kernel's sake, not the cage's:
          // switched on for the suite, as on kernels before 6.2 and on this machine, then put back.
          const knob = '/proc/sys/dev/tty/legacy_tiocsti';
          if (!existsSync(knob)) return; // a kernel before 6.2: always on
          const before = readFileSync(knob, 'utf8').trim();
          if (before === '0') {
            lab.onTeardown(() => writeFile(knob, before));
            await writeFile(knob, '1');
          }
        });

        /**
         * An interactive shell under a terminal runs the cage (`redirect` applied to it), whose command
         * pushes `touch MARKER` into its terminal input; then the shell reads on. The marker exists
         * afterwards only if the injected line reached the shell outside the cage.
         */
        async function injectInto(redirect: string): Promise<{ marker: string; output: string }> {
          const marker = join(side.home, `tiocsti-${++n}`);
          const sh = new PtyShell(lab, c.client, side.prefix, side.env);
          // The shell already runs as the caller.
          const [node, ...args] = side.wirecage([], [probe, 'tiocsti', `touch ${marker}`]);
          const wirecage = formatCommand(node!, args);
          // The dash keeps the terminal's echo of the typed line from matching.
          sh.type(`${wirecage}${redirect}; printf '%s-%s\\n' cage exited`);
          await sh.waitOutput(/cage-exited/, 'the cage to exit in the interactive shell');
          // Typed only now, after anything the cage pushed into the terminal.
          sh.type("printf '%s-%s\\n' shell done; exit");
          assert.equal(await sh.end(), 0, `the shell did not end cleanly:\n${sh.output()}`);
          assert.match(sh.output(), /shell-done/);
          assert.match(sh.output(), /probe start/, `the probe did not run in the cage:\n${sh.output()}`);
          return { marker, output: sh.output() };
        }

        it("cannot type into the caller's shell from the terminal it was given", async () => {
          const { marker, output } = await injectInto('');
          assert.ok(!existsSync(marker), `the command typed "touch ${marker}" into the caller's shell:\n${output}`);
        });

        it("cannot type into the caller's shell through stderr or /dev/tty when stdin is not a terminal", async () => {
          const { marker, output } = await injectInto(' </dev/null');
          assert.ok(!existsSync(marker), `the command typed "touch ${marker}" into the caller's shell:\n${output}`);
        });
      });

      describe('a runtime dir planted by another user', () => {
        // Another user: nobody for the unprivileged caller, the test user for root.
        const other = () => (caller.root ? user : NOBODY);
        let k = 0;

        /** Runs a cage with `env`; the planted `foreign` dir must be refused and left as it was. */
        async function refused(env: NodeJS.ProcessEnv, runtimeDir: string, foreign: string): Promise<void> {
          const before = statSync(foreign, { bigint: true });
          const r = await cage([], [probe, 'status'], { env });
          const after = statSync(foreign, { bigint: true });
          assert.deepEqual(readdirSync(foreign), [], `wirecage wrote into ${foreign}, a directory of ${other().name}`);
          assert.equal(after.mtimeNs, before.mtimeNs, `wirecage created (and removed) files in ${foreign}, a directory of ${other().name}`);
          assert.equal(r.code, 125, `wirecage ran with a runtime dir owned by ${other().name} (${runtimeDir}):\n${r.stdout}${r.stderr}`);
          assert.match(r.stderr, /runtime dir/, r.stderr);
          assert.ok(r.stderr.includes(runtimeDir) || r.stderr.includes(foreign), `the message does not name ${runtimeDir}: ${r.stderr}`);
          assert.ok(!r.stdout.includes('probe start'), 'the command ran');
        }

        /** A fresh runtime-dir parent for the caller, as its XDG_RUNTIME_DIR. */
        const xdg = () => (caller.root ? dir(join(base, `${tag}-xdg${++k}`), null, 0o711) : dir(join(side.home, `xdg${++k}`), user, 0o700));

        it('refuses $XDG_RUNTIME_DIR/wirecage owned by another user', async () => {
          const parent = await xdg();
          const planted = await dir(join(parent, 'wirecage'), other(), 0o777);
          await refused({ XDG_RUNTIME_DIR: parent }, planted, planted);
        });

        it("refuses $XDG_RUNTIME_DIR/wirecage as a symlink to another user's dir", async () => {
          const parent = await xdg();
          const foreign = await dir(join(base, `${tag}-foreign${k}`), other(), 0o777);
          await symlink(foreign, join(parent, 'wirecage'));
          await refused({ XDG_RUNTIME_DIR: parent }, join(parent, 'wirecage'), foreign);
        });

        if (!caller.root) {
          // Root's fallback is a system path (/run/...): only the user's fallback is a lab path.
          it('refuses $TMPDIR/wirecage-UID planted by another user in a shared TMPDIR', async () => {
            // The user was made by this suite and never logged in: it has no /run/user dir, so the
            // fallback under TMPDIR is the runtime dir.
            assert.ok(!existsSync(`/run/user/${user.uid}`), `/run/user/${user.uid} exists: it would be the runtime dir instead`);
            const shared = await dir(join(base, `${tag}-sharedtmp`), null, 0o1777);
            const planted = await dir(join(shared, `wirecage-${user.uid}`), other(), 0o777);
            await refused({ XDG_RUNTIME_DIR: undefined, TMPDIR: shared }, planted, planted);
          });
        }
      });
    });
  }
});
