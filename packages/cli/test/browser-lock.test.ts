// browserProfileInUse against real profile directories and real processes:
// the "browser" holding a lock is a copy of /bin/sleep (or python3, for an
// fcntl lock) named like the browser, so /proc shows its comm and exe as a
// browser's.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { browserProfileInUse, firefoxInstallHash } from '../src/cage/browser-lock.js';

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));

describe('browserProfileInUse', function () {
  this.timeout(20_000);
  let dir: string;
  let bin: string;
  const procs: ChildProcess[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-browser-lock-'));
    bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const name of ['chromium', 'google-chrome', 'firefox-esr']) copyFileSync('/bin/sleep', join(bin, name));
    copyFileSync('/bin/sleep', join(bin, 'notabrowser'));
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => new Promise((r) => p.once('exit', r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Waits (bounded) until /proc/<pid>/comm shows `comm`: the exec is done. */
  async function waitComm(pid: number, comm: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      let now = '';
      try {
        now = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // not yet
      }
      if (now === comm) return;
      if (Date.now() > deadline) throw new Error(`pid ${pid} never showed comm ${comm} (now ${JSON.stringify(now)})`);
      await delay(10);
    }
  }

  /** A live process whose comm is `name` (a renamed sleep). */
  async function fakeBrowser(name: string): Promise<number> {
    const p = spawn(join(bin, name), ['300'], { stdio: 'ignore' });
    procs.push(p);
    await waitComm(p.pid!, name);
    return p.pid!;
  }

  /** A pid that was a browser and has exited. */
  async function deadPid(): Promise<number> {
    const p = spawn(join(bin, 'chromium'), ['0'], { stdio: 'ignore' });
    await new Promise((r) => p.once('exit', r));
    return p.pid!;
  }

  function freshHome(): string {
    return mkdtempSync(join(dir, 'home-'));
  }
  const envFor = (home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    HOME: home,
    PATH: `${bin}:/usr/bin:/bin`,
    ...extra,
  });

  describe('Chromium', () => {
    let pid: number;
    before(async () => (pid = await fakeBrowser('chromium')));

    function lockedProfile(target = `${hostname()}-${pid}`): string {
      const udd = mkdtempSync(join(dir, 'udd-'));
      symlinkSync(target, join(udd, 'SingletonLock'));
      return udd;
    }

    it('names the SingletonLock, the pid and the way out when a live chromium holds --user-data-dir=DIR', () => {
      const udd = lockedProfile();
      const msg = browserProfileInUse(['chromium', '--no-first-run', `--user-data-dir=${udd}`, 'http://x/'], envFor(freshHome()));
      assert.ok(msg !== null);
      assert.ok(!msg.includes('\n'), 'one line');
      assert.ok(msg.includes(join(udd, 'SingletonLock')), msg);
      assert.ok(msg.includes(`pid ${pid}`), msg);
      assert.match(msg, /running outside the cage/);
      assert.match(msg, /Close that browser first, or give the caged one another profile: --user-data-dir=DIR/);
    });

    it('finds the program by its full path and takes -user-data-dir=DIR (one dash) too', () => {
      const udd = lockedProfile();
      assert.ok(browserProfileInUse([join(bin, 'chromium'), `-user-data-dir=${udd}`], envFor(freshHome())));
    });

    it('says nothing when the profile is free, the pid is dead, another program, or another host', async () => {
      const home = freshHome();
      const free = mkdtempSync(join(dir, 'udd-'));
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${free}`], envFor(home)), null);
      const stale = lockedProfile(`${hostname()}-${await deadPid()}`);
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${stale}`], envFor(home)), null);
      const notChrome = lockedProfile(`${hostname()}-${await fakeBrowser('notabrowser')}`);
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${notChrome}`], envFor(home)), null);
      const mine = lockedProfile(`${hostname()}-${process.pid}`); // node, alive, not a browser
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${mine}`], envFor(home)), null);
      const elsewhere = lockedProfile(`not-${hostname()}-${pid}`);
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${elsewhere}`], envFor(home)), null);
    });

    it('ignores commands that are not browsers, and the same profile given to them', () => {
      const udd = lockedProfile();
      assert.equal(browserProfileInUse(['notabrowser', `--user-data-dir=${udd}`], envFor(freshHome())), null);
      assert.equal(browserProfileInUse(['sh', '-c', `chromium --user-data-dir=${udd}`], envFor(freshHome())), null);
      assert.equal(browserProfileInUse([], envFor(freshHome())), null);
    });

    it('checks the default profile: $XDG_CONFIG_HOME/chromium, else ~/.config/chromium; google-chrome has its own', () => {
      const home = freshHome();
      mkdirSync(join(home, '.config', 'chromium'), { recursive: true });
      symlinkSync(`${hostname()}-${pid}`, join(home, '.config', 'chromium', 'SingletonLock'));
      const msg = browserProfileInUse(['chromium', 'http://x/'], envFor(home));
      assert.ok(msg?.includes(join(home, '.config', 'chromium', 'SingletonLock')), String(msg));
      // Another config home: that default is free.
      const xdg = mkdtempSync(join(dir, 'xdg-'));
      assert.equal(browserProfileInUse(['chromium'], envFor(home, { XDG_CONFIG_HOME: xdg })), null);
      // CHROME_CONFIG_HOME wins over XDG_CONFIG_HOME, as in chrome_paths_linux.cc.
      assert.ok(browserProfileInUse(['chromium'], envFor(home, { XDG_CONFIG_HOME: xdg, CHROME_CONFIG_HOME: join(home, '.config') })));
      // google-chrome's default is ~/.config/google-chrome, not chromium's.
      assert.equal(browserProfileInUse(['google-chrome'], envFor(home)), null);
      mkdirSync(join(home, '.config', 'google-chrome'));
      symlinkSync(`${hostname()}-${pid}`, join(home, '.config', 'google-chrome', 'SingletonLock'));
      assert.ok(browserProfileInUse(['google-chrome'], envFor(home))?.includes('google-chrome/SingletonLock'));
    });

    it('reads --user-data-dir DIR (space) as Chromium does: an empty switch, so the default profile, and DIR a URL', () => {
      const home = freshHome();
      const udd = lockedProfile();
      assert.equal(browserProfileInUse(['chromium', '--user-data-dir', udd], envFor(home)), null);
      mkdirSync(join(home, '.config', 'chromium'), { recursive: true });
      symlinkSync(`${hostname()}-${pid}`, join(home, '.config', 'chromium', 'SingletonLock'));
      assert.ok(
        browserProfileInUse(['chromium', '--user-data-dir', mkdtempSync(join(dir, 'udd-'))], envFor(home))?.includes(
          join(home, '.config', 'chromium'),
        ),
      );
    });

    it("takes the last --user-data-dir=, ignores switches after --, and trusts Debian's --temp-profile", () => {
      const home = freshHome();
      const udd = lockedProfile();
      const free = mkdtempSync(join(dir, 'udd-'));
      assert.ok(browserProfileInUse(['chromium', `--user-data-dir=${free}`, `--user-data-dir=${udd}`], envFor(home)));
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${udd}`, `--user-data-dir=${free}`], envFor(home)), null);
      assert.equal(browserProfileInUse(['chromium', `--user-data-dir=${free}`, '--', `--user-data-dir=${udd}`], envFor(home)), null);
      mkdirSync(join(home, '.config', 'chromium'), { recursive: true });
      symlinkSync(`${hostname()}-${pid}`, join(home, '.config', 'chromium', 'SingletonLock'));
      assert.equal(browserProfileInUse(['chromium', '--temp-profile'], envFor(home)), null);
    });
  });

  describe('Firefox', () => {
    let pid: number;
    before(async () => (pid = await fakeBrowser('firefox-esr')));
    const lockTarget = () => `127.0.0.1:+${pid}`;

    function lockedProfile(parent: string, name: string, target: string | null = lockTarget()): string {
      const p = join(parent, name);
      mkdirSync(p, { recursive: true });
      if (target !== null) symlinkSync(target, join(p, 'lock'));
      return p;
    }

    it('names the lock, the pid and --profile when a live firefox holds --profile DIR', () => {
      const prof = lockedProfile(dir, 'ff-explicit');
      for (const cmd of [
        ['firefox-esr', '--profile', prof, 'http://x/'],
        ['firefox-esr', '-profile', prof],
        ['firefox-esr', `--profile=${prof}`],
        ['firefox-esr', '-Profile', prof],
      ]) {
        const msg = browserProfileInUse(cmd, envFor(freshHome()));
        assert.ok(msg !== null, cmd.join(' '));
        assert.ok(!msg.includes('\n'));
        assert.ok(msg.includes(`${join(prof, 'lock')} -> 127.0.0.1:+${pid}`), msg);
        assert.ok(msg.includes(`pid ${pid}`), msg);
        assert.match(msg, /Close that browser first, or give the caged one another profile: --profile DIR/);
      }
    });

    it('says nothing for a free profile, a dead holder, or a holder that is not Firefox', async () => {
      const home = freshHome();
      assert.equal(browserProfileInUse(['firefox-esr', '--profile', lockedProfile(home, 'free', null)], envFor(home)), null);
      const stale = lockedProfile(home, 'stale', `127.0.0.1:+${await deadPid()}`);
      assert.equal(browserProfileInUse(['firefox-esr', '--profile', stale], envFor(home)), null);
      const other = lockedProfile(home, 'other', `127.0.0.1:+${await fakeBrowser('notabrowser')}`);
      assert.equal(browserProfileInUse(['firefox-esr', '--profile', other], envFor(home)), null);
      // A chromium pid does not hold a Firefox profile.
      const chromium = lockedProfile(home, 'chromium', `127.0.0.1:+${await fakeBrowser('chromium')}`);
      assert.equal(browserProfileInUse(['firefox-esr', '--profile', chromium], envFor(home)), null);
    });

    it('without --profile, takes the [Install<hash>] default of this installation from ~/.mozilla/firefox/profiles.ini', () => {
      const home = freshHome();
      const root = join(home, '.mozilla', 'firefox');
      const mine = lockedProfile(root, 'aaaa.default-esr', null);
      const theirs = lockedProfile(root, 'bbbb.default-release');
      const ini = (mineHash: string) =>
        '[Profile1]\nName=default-release\nIsRelative=1\nPath=bbbb.default-release\n\n' +
        '[Profile0]\nName=default-esr\nIsRelative=1\nPath=aaaa.default-esr\nDefault=1\n\n' +
        '[General]\nStartWithLastProfile=1\nVersion=2\n\n' +
        `[Install${mineHash}]\nDefault=aaaa.default-esr\nLocked=1\n\n` +
        '[Install0123456789ABCDEF]\nDefault=bbbb.default-release\nLocked=1\n';
      // `firefox-esr` is found in PATH: its install dir is the directory of the file it resolves to.
      writeFileSync(join(root, 'profiles.ini'), ini(firefoxInstallHash(realpathSync(bin))));
      assert.equal(browserProfileInUse(['firefox-esr', 'http://x/'], envFor(home)), null, "the other install's running profile was blamed");
      symlinkSync(lockTarget(), join(mine, 'lock'));
      const msg = browserProfileInUse(['firefox-esr', 'http://x/'], envFor(home));
      assert.ok(msg?.includes(join(mine, 'lock')), String(msg));
      // A name that resolves (through a symlink) to the same binary is the same installation.
      const alias = join(dir, 'alias');
      mkdirSync(alias, { recursive: true });
      if (!existsSync(join(alias, 'x-www-browser'))) symlinkSync(join(bin, 'firefox-esr'), join(alias, 'x-www-browser'));
      assert.ok(browserProfileInUse(['x-www-browser'], envFor(home, { PATH: `${alias}:/usr/bin:/bin` }))?.includes(join(mine, 'lock')));
      // When no section is this installation's, every install's default is checked.
      rmSync(join(mine, 'lock'));
      writeFileSync(join(root, 'profiles.ini'), ini('FEDCBA9876543210'));
      assert.ok(browserProfileInUse(['firefox-esr'], envFor(home))?.includes(join(theirs, 'lock')));
      assert.notEqual(theirs, mine);
    });

    it('without [Install*] sections, takes the [Profile*] with Default=1; -P NAME takes that profile', () => {
      const home = freshHome();
      const root = join(home, '.mozilla', 'firefox');
      const def = lockedProfile(root, 'def');
      const named = lockedProfile(root, 'named', null);
      writeFileSync(
        join(root, 'profiles.ini'),
        `[Profile0]\nName=work\nIsRelative=1\nPath=named\n\n[Profile1]\nName=main\nIsRelative=0\nPath=${def}\nDefault=1\n\n[General]\nVersion=2\n`,
      );
      assert.ok(browserProfileInUse(['firefox-esr'], envFor(home))?.includes(join(def, 'lock')));
      assert.equal(browserProfileInUse(['firefox-esr', '-P', 'work'], envFor(home)), null);
      symlinkSync(lockTarget(), join(named, 'lock'));
      assert.ok(browserProfileInUse(['firefox-esr', '-p', 'work'], envFor(home))?.includes(join(named, 'lock')));
    });

    it('uses $XDG_CONFIG_HOME/mozilla/firefox only while ~/.mozilla/firefox does not exist (Firefox 147+)', () => {
      const home = freshHome();
      const xdg = join(home, 'xdg');
      const root = join(xdg, 'mozilla', 'firefox');
      lockedProfile(root, 'p');
      writeFileSync(join(root, 'profiles.ini'), '[Profile0]\nName=p\nIsRelative=1\nPath=p\nDefault=1\n');
      assert.ok(browserProfileInUse(['firefox-esr'], envFor(home, { XDG_CONFIG_HOME: xdg }))?.includes(join(root, 'p', 'lock')));
      // ~/.config is the XDG default.
      const home2 = freshHome();
      const root2 = join(home2, '.config', 'mozilla', 'firefox');
      lockedProfile(root2, 'p');
      writeFileSync(join(root2, 'profiles.ini'), '[Profile0]\nName=p\nIsRelative=1\nPath=p\nDefault=1\n');
      assert.ok(browserProfileInUse(['firefox-esr'], envFor(home2)));
      // The legacy dir, once it exists, is the one Firefox uses (here: no profiles at all).
      mkdirSync(join(home2, '.mozilla', 'firefox'), { recursive: true });
      assert.equal(browserProfileInUse(['firefox-esr'], envFor(home2)), null);
    });

    it('finds a profile whose .parentlock is fcntl-locked by a live firefox even without the lock symlink', async function () {
      assert.ok(PYTHON, 'python3 is missing: ./scripts/setup installs it');
      const prof = lockedProfile(dir, 'ff-fcntl', null);
      const lockFile = join(prof, '.parentlock');
      writeFileSync(lockFile, '');
      // python3, renamed: fcntl(F_SETLK) on .parentlock as Firefox does, then wait to be killed.
      const py = join(bin, 'firefox');
      copyFileSync(PYTHON, py);
      const code = `import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nprint('locked',flush=True)\ntime.sleep(300)\n`;
      const p = spawn(py, ['-c', code, lockFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(p);
      await new Promise<void>((resolve, reject) => {
        p.stdout.once('data', () => resolve());
        p.once('exit', (c) => reject(new Error(`the lock holder exited with ${c}`)));
      });
      const msg = browserProfileInUse(['firefox-esr', '--profile', prof], envFor(freshHome()));
      assert.ok(msg?.includes(`${lockFile} locked`), String(msg));
      assert.ok(msg?.includes(`pid ${p.pid}`), String(msg));
    });
  });

  it('firefoxInstallHash matches the [Install<hash>] sections Firefox ESR 153 wrote for these install dirs', () => {
    // Each observed by running a copy of /usr/lib/firefox-esr from that directory with a fresh HOME
    // (they cover CityHash64's 9-16, 17-32, 33-64 and 65+ byte paths).
    assert.equal(firefoxInstallHash('/tmp/wf'), 'E747468DD30FE8CF');
    assert.equal(firefoxInstallHash('/tmp/wcgff'), '266F7D834CEA0721');
    assert.equal(firefoxInstallHash('/usr/lib/firefox-esr'), '3B6073811A6ABF12');
    assert.equal(firefoxInstallHash('/tmp/wcgff1234567890'), '23A463767911DAF4');
    assert.equal(firefoxInstallHash('/tmp/wcgexp/a-rather-long-install-directory-name/firefox-esr-copy'), '5986A61821302C06');
  });
});
