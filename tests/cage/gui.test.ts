// Real browsers in the cage, on a real X server: Xvfb (started by the test
// with an xauth cookie) in the lab's client namespace, Debian's chromium and
// firefox-esr started as an ordinary user the test creates, and the lab's web
// server on the server's tunnel address, which logs each request's path and
// source address.
//
//   1. `wirecage run --gui -- chromium URL` (not headless, Chromium's own
//      sandbox on) loads the page through the tunnel.
//   2. The hand-off: with the same profile already open by a browser outside
//      the cage, the caged run must refuse (non-zero, naming the lock) rather
//      than take the profile over or pass the URL to the browser outside.
//   3. The same two with firefox-esr (no --profile, no --no-remote needed).
//
// The client namespace gets a route to the server's tunnel prefix over the
// veth, so a browser OUTSIDE the cage could load the page too: a page that
// leaked or was handed to the outside instance shows up in the server's log
// from the client's veth address instead of the cage's tunnel address.
//
// The user's home is under /home, not /tmp: the cage has a private /tmp.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOrThrow } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import {
  WIRECAGE_BIN,
  cageKey,
  cageLab,
  registerClient,
  serverPeer,
  startFixture,
  writeWgQuick,
  type CageLab,
  type CageServer,
} from '../lib/cage.js';
import type { LabProcess } from '../lib/process.js';
import { asUserArgs, assertUserReads, createHome, createTestUser, openTunToEveryone, type TestUser } from '../lib/test-user.js';
import { waitFor } from '../lib/wait.js';

const WEB_SERVER = fileURLToPath(new URL('./fixtures/gui-web.mjs', import.meta.url));
const WEB_PORT = 8080;

/** Chromium without its calls home (there is no internet here) and without keyring or first-run UI. */
const CHROMIUM_FLAGS = [
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-breakpad',
  '--no-pings',
  '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  '--password-store=basic',
  '--ozone-platform=x11',
  '--disable-gpu',
];

/** What Chromium prints when its sandbox cannot be used. */
const NO_SANDBOX = /No usable sandbox|Running as root without --no-sandbox is not supported/;

/** Firefox prefs that stop background calls (written into the profile after its first run). */
const FIREFOX_USER_JS = [
  'user_pref("browser.shell.checkDefaultBrowser", false);',
  'user_pref("browser.aboutwelcome.enabled", false);',
  'user_pref("browser.startup.homepage_override.mstone", "ignore");',
  'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
  'user_pref("toolkit.telemetry.enabled", false);',
  'user_pref("app.normandy.enabled", false);',
  'user_pref("app.update.enabled", false);',
  'user_pref("extensions.update.enabled", false);',
  'user_pref("browser.safebrowsing.update.enabled", false);',
  'user_pref("network.captive-portal-service.enabled", false);',
  'user_pref("network.connectivity-service.enabled", false);',
  '',
].join('\n');

interface Request {
  path: string;
  from: string;
  ua: string;
}

/** pid -> ppid for every process on the machine (root's view). */
function processTree(): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.set(Number(e), ppid);
    } catch {
      // gone
    }
  }
  return out;
}

function descendants(root: number): number[] {
  const tree = processTree();
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    for (const [pid, ppid] of tree) {
      if (ppid === p) {
        out.push(pid);
        todo.push(pid);
      }
    }
  }
  return out;
}

/**
 * What the test needs of a process. `type` is Chromium's --type= (null for the browser process);
 * Chromium rewrites the command line of its children (setproctitle), so their /proc/<pid>/cmdline
 * is one space-separated string rather than NUL-separated arguments.
 */
function procInfo(pid: number): { comm: string; cmdline: string; type: string | null; userNs: string; pidNs: string; uid: number } | null {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return {
      comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
      cmdline,
      type: /(?:^| )--type=(\S+)/.exec(cmdline)?.[1] ?? null,
      userNs: readlinkSync(`/proc/${pid}/ns/user`),
      pidNs: readlinkSync(`/proc/${pid}/ns/pid`),
      uid: Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]),
    };
  } catch {
    return null;
  }
}

function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** The default profile Firefox chose for its installation ([Install<hash>] Default=) under the profile root. */
function firefoxDefaultProfile(home: string): string | null {
  for (const root of [join(home, '.mozilla', 'firefox'), join(home, '.config', 'mozilla', 'firefox')]) {
    let ini: string;
    try {
      ini = readFileSync(join(root, 'profiles.ini'), 'utf8');
    } catch {
      continue;
    }
    const m = /^\[Install[0-9A-F]+\]\s*\nDefault=(.+)$/m.exec(ini);
    if (m) return m[1]!.startsWith('/') ? m[1]! : join(root, m[1]!);
  }
  return null;
}

describe('wirecage run --gui: real browsers under Xvfb', function () {
  this.timeout(90_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  let user: TestUser & { home: string };
  let conf: string;
  let web: LabProcess;
  let display: number;
  let xauth: string;
  /** The cage's tunnel address: the only source the web server may see. */
  let cageAddress: string;
  after(() => lab.teardown());

  before(async function () {
    this.timeout(60_000);
    for (const bin of ['Xvfb', 'xauth', 'chromium', 'firefox-esr']) {
      if ((await run('sh', ['-c', `command -v ${bin}`])).code !== 0)
        throw new Error(`${bin} is missing: run ./scripts/setup (it installs xvfb, xauth, chromium, firefox-esr)`);
    }
    c = await cageLab(lab);
    srv = c.servers[0]!;
    // The outside browser could reach the web server over the veth: a hand-off or a leak is visible.
    await c.client.addRoute(srv.net4, { via: srv.outer });

    // The user, with a home the cage can see (under /home: the cage's /tmp is private).
    const u = await createTestUser(lab, `${lab.id}g`);
    const home = await createHome(lab, u);
    lab.onTeardown(async () => {
      // Whatever the user still runs (a browser's double-forked helpers) is the test's: end it by pid.
      await killUserProcesses(u.uid);
      // What the user's browsers and wirecage left in the shared temp dirs (SingletonSocket dirs,
      // Firefox's /tmp/firefox-esr, wirecage-<uid>): the uid was made for this suite, so they are ours.
      for (const dir of ['/tmp', '/var/tmp', '/dev/shm']) {
        for (const e of readdirSync(dir)) {
          const p = join(dir, e);
          if ((await lstat(p).catch(() => null))?.uid === u.uid) await rm(p, { recursive: true, force: true });
        }
      }
    });
    user = { ...u, home };
    const { uid, gid } = u;
    await openTunToEveryone(lab);
    await assertUserReads(c.client, user, WIRECAGE_BIN);

    // The wirecage config: the user's, 0600.
    const key = await cageKey(c.dir, 'gui');
    cageAddress = srv.clientAddress(2).v4;
    await registerClient(srv, key, [cageAddress]);
    const confDir = await lab.tempDir();
    await chown(confDir, uid, gid);
    conf = await writeWgQuick(confDir, 'gui.conf', { PrivateKey: key.privateKey, Address: `${cageAddress}/32`, DNS: srv.v4 }, [
      serverPeer(srv),
    ]);
    await chown(conf, uid, gid);

    // Xvfb with a cookie: the user's XAUTHORITY file (in a 0700 dir of the user's, under /tmp as on
    // many desktops, where --gui must pass it through the cage's private /tmp).
    const xdir = await lab.tempDir();
    await chown(xdir, uid, gid);
    xauth = join(xdir, 'Xauthority');
    display = freeDisplay();
    // FamilyWild (ffff): the cookie holds for any host name, should the cage have its own.
    const hex = (s: string) => Buffer.from(s).toString('hex');
    const cookie = randomBytes(16).toString('hex');
    const entry = `ffff 0000  ${String(display).length.toString(16).padStart(4, '0')} ${hex(String(display))} 0012 ${hex('MIT-MAGIC-COOKIE-1')} 0010 ${cookie}\n`;
    await runOrThrow('xauth', ['-f', xauth, 'nmerge', '-'], { input: entry });
    await chown(xauth, uid, gid);
    await chmod(xauth, 0o600);
    const xvfb = c.client.spawn('Xvfb', [
      `:${display}`,
      '-nolisten',
      'tcp',
      '-auth',
      xauth,
      '-screen',
      '0',
      '1280x800x24',
      '-displayfd',
      '1',
    ]);
    lab.onTeardown(async () => {
      // Xvfb removes these itself on SIGTERM, not when the lab had to SIGKILL it.
      await rm(`/tmp/.X11-unix/X${display}`, { force: true });
      await rm(`/tmp/.X${display}-lock`, { force: true });
    });
    // -displayfd 1: Xvfb prints the display number once it accepts clients.
    await waitFor(
      () => {
        xvfb.assertRunning();
        return xvfb.output().split('\n').includes(String(display));
      },
      { what: `Xvfb :${display} to accept clients`, timeoutMs: 15_000, describe: () => xvfb.describe() },
    );
    const probe = await asUser('xauth', ['-f', xauth, 'list']);
    assert.match(probe.stdout, /MIT-MAGIC-COOKIE-1/, probe.stderr);

    web = await startFixture(srv.ns, WEB_SERVER, [srv.v4, String(WEB_PORT)]);
  });

  function freeDisplay(): number {
    for (let n = 90; n < 400; n++) if (!existsSync(`/tmp/.X${n}-lock`) && !existsSync(`/tmp/.X11-unix/X${n}`)) return n;
    throw new Error('no free X display number in 90..399');
  }

  async function killUserProcesses(uid: number): Promise<void> {
    const mine = (): number[] =>
      [...processTree().keys()].filter((pid) => {
        try {
          return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) === uid;
        } catch {
          return false;
        }
      });
    for (const pid of mine()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor(() => mine().length === 0, { what: `the processes of uid ${uid} to end`, timeoutMs: 5_000 });
  }

  function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, HOME: user.home, LANG: 'C.UTF-8', DISPLAY: `:${display}`, XAUTHORITY: xauth, ...extra };
  }

  /** `cmd args` as the test user in the client namespace, to completion. */
  function asUser(cmd: string, args: readonly string[], timeoutMs = 30_000) {
    const [sp, ...spArgs] = asUserArgs(user);
    return run('ip', ['netns', 'exec', c.client.name, sp!, ...spArgs, cmd, ...args], { env: userEnv(), cwd: user.home, timeoutMs });
  }

  /** A long-running process of the test user in the client namespace (outside any cage). */
  function spawnAsUser(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): LabProcess {
    const [sp, ...spArgs] = asUserArgs(user);
    return c.client.spawn(sp!, [...spArgs, cmd, ...args], { env: userEnv(env), cwd: user.home });
  }

  /** `wirecage run -c CONF --gui -- CMD...` as the test user. */
  function cage(cmd: readonly string[], env: NodeJS.ProcessEnv = {}): LabProcess {
    return spawnAsUser(process.execPath, [WIRECAGE_BIN, 'run', '-c', conf, '--gui', '--', ...cmd], env);
  }

  function requests(): Request[] {
    return web
      .output()
      .split('\n')
      .filter((l) => l.startsWith('request '))
      .map((l) => JSON.parse(l.slice('request '.length)) as Request);
  }

  const url = (path: string) => `http://${srv.v4}:${WEB_PORT}${path}`;

  /** Waits until the web server logged `path`, failing at once if `proc` ends first. */
  async function waitForRequest(proc: LabProcess, path: string, timeoutMs: number): Promise<Request> {
    return waitFor(
      () => {
        const r = requests().find((q) => q.path === path);
        if (r) return r;
        proc.assertRunning();
        return null;
      },
      {
        what: `the web server to log ${path}`,
        timeoutMs,
        intervalMs: 100,
        describe: () => `${proc.describe()}\nweb server: ${web.output()}`,
      },
    );
  }

  /** SIGTERM to wirecage itself (it forwards it to the command), then its exit, bounded. */
  async function terminate(proc: LabProcess, timeoutMs = 15_000): Promise<void> {
    if (!proc.running) return;
    process.kill(proc.pid!, 'SIGTERM');
    await waitFor(() => proc.exitStatus !== null, {
      what: 'the caged browser to end after SIGTERM to wirecage',
      timeoutMs,
      describe: () => proc.describe(),
    });
  }

  /** Runs `fn`, then stops the given processes whatever happened (the lab's teardown is the fallback). */
  async function stopping<T>(procs: LabProcess[], fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      await Promise.allSettled(procs.map((p) => p.stop()));
    }
  }

  /**
   * The caged run against a profile held outside must end non-zero, naming the lock and the pid of
   * the browser outside, and nobody may load `path`. A run that exited 0 is given a moment (bounded)
   * to show whether it handed the URL to the browser outside, for the failure message.
   */
  async function assertRefused(caged: LabProcess, path: string, lock: string, outsidePid: number): Promise<void> {
    await waitFor(() => caged.exitStatus !== null || requests().some((q) => q.path === path), {
      what: `the caged run to end (or ${path} to be loaded)`,
      timeoutMs: 25_000,
      intervalMs: 100,
      describe: () => `${caged.describe()}\n${lock} -> ${readlinkOrNull(lock)}\nweb server: ${web.output()}`,
    });
    const loaded = requests().find((q) => q.path === path);
    assert.equal(
      loaded,
      undefined,
      `${path} was loaded from ${loaded?.from} (${loaded?.from === cageAddress ? 'the caged browser opened the profile in use' : 'by the browser outside the cage'}):\n${caged.describe()}`,
    );
    if (caged.exitStatus!.code === 0) {
      const handed = await waitFor(() => requests().find((q) => q.path === path), {
        what: `${path} after the caged run exited 0`,
        timeoutMs: 10_000,
      }).catch(() => null);
      assert.fail(
        handed
          ? `the caged run exited 0 and handed ${path} to the browser outside the cage, which loaded it from ${handed.from}:\n${caged.describe()}`
          : `the caged run exited 0 without loading anything:\n${caged.describe()}`,
      );
    }
    assert.ok(caged.output().includes(lock), `the message does not name ${lock}:\n${caged.describe()}`);
    assert.match(caged.output(), new RegExp(`pid ${outsidePid}\\b`), caged.describe());
  }

  describe('chromium', () => {
    it('loads a page through the tunnel with --gui, under X, with its own sandbox on', async () => {
      const udd = join(user.home, 'chromium-caged');
      const mark = requests().length;
      const caged = cage(['chromium', ...CHROMIUM_FLAGS, `--user-data-dir=${udd}`, url('/caged')]);
      await stopping([caged], async () => {
        const req = await waitForRequest(caged, '/caged', 45_000);
        assert.equal(req.from, cageAddress, `the page was loaded from ${req.from}, not through the tunnel`);
        assert.match(req.ua, /Chrome\//);
        assert.ok(!/HeadlessChrome/.test(req.ua), `chromium ran headless: ${req.ua}`);

        // Chromium's sandbox: its renderers sit in user and PID namespaces of their own.
        const procs = await waitFor(
          () => {
            const all = descendants(caged.pid!)
              .map((pid) => ({ pid, info: procInfo(pid) }))
              .filter((p) => p.info !== null && p.info.comm === 'chromium');
            const browser = all.find((p) => p.info!.type === null);
            const renderers = all.filter((p) => p.info!.type === 'renderer');
            return browser && renderers.length > 0 ? { browser, renderers } : null;
          },
          {
            what: 'the caged chromium and a renderer in the process tree',
            timeoutMs: 10_000,
            describe: () =>
              `${caged.describe()}\nprocesses under pid ${caged.pid}:\n` +
              descendants(caged.pid!)
                .map((pid) => `${pid} ${procInfo(pid)?.comm} ${procInfo(pid)?.cmdline.slice(0, 120)}`)
                .join('\n'),
          },
        );
        const b = procs.browser.info!;
        assert.equal(b.uid, user.uid, 'the caged browser does not run as the user');
        assert.notEqual(b.userNs, readlinkSync('/proc/self/ns/user'), "the caged browser is in the host's user namespace");
        for (const r of procs.renderers) {
          assert.notEqual(r.info!.userNs, b.userNs, `renderer ${r.pid} shares the browser's user namespace: no sandbox`);
          assert.notEqual(r.info!.pidNs, b.pidNs, `renderer ${r.pid} shares the browser's PID namespace: no sandbox`);
        }

        await terminate(caged);
        assert.doesNotMatch(caged.output(), NO_SANDBOX);
        assert.deepEqual(
          requests()
            .slice(mark)
            .filter((q) => q.from !== cageAddress),
          [],
          'the web server saw requests from outside the tunnel',
        );
      });
    });

    // Chromium's SingletonSocket lives in $TMPDIR. With the default (/tmp, private in the cage) the
    // caged chromium cannot reach the running one: it would take the lock for stale and open the
    // profile a second time. With a TMPDIR the cage shares (here: in the home), it would connect and
    // hand the URL over, and the browser outside would load it, outside the tunnel.
    for (const variant of [
      { title: 'with its SingletonSocket in /tmp', tmp: false },
      { title: 'with its SingletonSocket in a TMPDIR the cage shares', tmp: true },
    ]) {
      it(`refuses to open a profile that chromium outside the cage holds (${variant.title}), and hands it nothing`, async () => {
        const tag = variant.tmp ? 'tmpdir' : 'tmp';
        const env: NodeJS.ProcessEnv = {};
        if (variant.tmp) {
          env.TMPDIR = join(user.home, 'tmp');
          await mkdir(env.TMPDIR, { mode: 0o700 });
          await chown(env.TMPDIR, user.uid, user.gid);
        }
        const udd = join(user.home, `chromium-shared-${tag}`);
        const lock = join(udd, 'SingletonLock');
        const path = `/handoff-${tag}`;
        const outside = spawnAsUser('chromium', [...CHROMIUM_FLAGS, `--user-data-dir=${udd}`, 'about:blank'], env);
        await stopping([outside], async () => {
          const held = `${hostname()}-${outside.pid}`;
          await waitFor(
            () => {
              outside.assertRunning();
              return readlinkOrNull(lock) === held && readlinkOrNull(join(udd, 'SingletonSocket')) !== null;
            },
            { what: `${lock} -> ${held}`, timeoutMs: 30_000, describe: () => `${lock} -> ${readlinkOrNull(lock)}\n${outside.describe()}` },
          );

          const caged = cage(['chromium', ...CHROMIUM_FLAGS, `--user-data-dir=${udd}`, url(path)], env);
          await stopping([caged], () => assertRefused(caged, path, lock, outside.pid!));
          assert.equal(readlinkOrNull(lock), held, 'the cage took the SingletonLock of the browser outside');
          outside.assertRunning();
        });
      });
    }
  });

  describe('firefox-esr', () => {
    it('loads a page through the tunnel with --gui, with its default profile (no --profile, no --no-remote)', async () => {
      const mark = requests().length;
      const caged = cage(['firefox-esr', url('/caged-firefox')]);
      await stopping([caged], async () => {
        const req = await waitForRequest(caged, '/caged-firefox', 60_000);
        assert.equal(req.from, cageAddress, `the page was loaded from ${req.from}, not through the tunnel`);
        assert.match(req.ua, /Firefox\//);
        // Firefox made its default profile in the user's home, which the cage shares.
        assert.ok(firefoxDefaultProfile(user.home), 'no default profile in profiles.ini after the caged run');
        await terminate(caged, 20_000);
        assert.deepEqual(
          requests()
            .slice(mark)
            .filter((q) => q.from !== cageAddress),
          [],
          'the web server saw requests from outside the tunnel',
        );
      });
    });

    it('refuses to open the default profile that firefox-esr outside the cage holds, and hands it nothing', async () => {
      // The profile the caged first run made is the installation's default: open it outside with
      // --profile. (Should that run have failed, the outside one makes the default profile itself.)
      const made = firefoxDefaultProfile(user.home);
      if (made !== null) {
        await writeFile(join(made, 'user.js'), FIREFOX_USER_JS);
        await chown(join(made, 'user.js'), user.uid, user.gid);
      }
      const outside = spawnAsUser('firefox-esr', made !== null ? ['--profile', made, 'about:blank'] : ['about:blank']);
      await stopping([outside], async () => {
        const { lock, held } = await waitFor(
          () => {
            outside.assertRunning();
            const profile = made ?? firefoxDefaultProfile(user.home);
            const t = profile === null ? null : readlinkOrNull(join(profile, 'lock'));
            return t !== null && t.endsWith(`:+${outside.pid}`) ? { lock: join(profile!, 'lock'), held: t } : null;
          },
          {
            what: `the default profile's lock -> <ip>:+${outside.pid}`,
            timeoutMs: 30_000,
            describe: () => `profile ${made ?? firefoxDefaultProfile(user.home)}\n${outside.describe()}`,
          },
        );

        const caged = cage(['firefox-esr', url('/handoff-firefox')]);
        await stopping([caged], () => assertRefused(caged, '/handoff-firefox', lock, outside.pid!));
        assert.equal(readlinkOrNull(lock), held, 'the cage removed or took the lock of the browser outside');
        outside.assertRunning();
      });
    });
  });
});
