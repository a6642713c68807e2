// `wirecage doctor`'s checks against real conditions made here: a device-like
// file chmod-ed and checked by another user, user namespaces refused in a
// child user namespace whose user.max_user_namespaces is 0, a config
// directory others can read. Tests that need root (another uid, a sysctl)
// skip without it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfigDir, checkKernel, checkUserNamespaces, formatCheck, type DoctorCheck } from '../src/doctor/index.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const DOCTOR = fileURLToPath(new URL('../src/doctor/index.ts', import.meta.url));
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** Runs `check(...args)` of src/doctor in a fresh process, through `prefix` (setpriv, unshare...). */
function checkIn(prefix: string[], check: string, args: unknown[] = []): DoctorCheck {
  const script = `import * as d from ${JSON.stringify(DOCTOR)}; process.stdout.write(JSON.stringify(d.${check}(...${JSON.stringify(args)})));`;
  const argv = [...prefix, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DoctorCheck;
}

const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

describe('wirecage doctor', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-doctor-'));
    chmodSync(dir, 0o755);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(tmpdir(), `tsx-${NOBODY}`), { recursive: true, force: true });
  });

  describe('/dev/net/tun access', () => {
    it('fails for a user who cannot read and write the device, saying `sudo chmod 0666`; passes once it is 0666', function () {
      assert.ok(isRoot, 'this test acts as another user: run it as root, as the suites run');
      const tun = join(dir, 'tun');
      writeFileSync(tun, '');
      chmodSync(tun, 0o600);
      const refused = checkIn(asNobody, 'checkTunDevice', [tun]);
      assert.deepEqual(refused, {
        name: tun,
        ok: false,
        detail: `not readable and writable by uid ${NOBODY} (mode 0600)`,
        fix: `run \`sudo chmod 0666 ${tun}\`, as the distributions' udev rule does`,
      });
      chmodSync(tun, 0o666);
      assert.deepEqual(checkIn(asNobody, 'checkTunDevice', [tun]), { name: tun, ok: true, detail: `readable and writable by uid ${NOBODY} (mode 0666)` });
    });

    it('says to load the module when the device is missing', () => {
      const r = checkIn([], 'checkTunDevice', [join(dir, 'no-such-tun')]);
      assert.deepEqual([r.ok, r.detail, r.fix], [false, 'missing', 'load the tun module: sudo modprobe tun']);
    });
  });

  describe('user namespaces', () => {
    it('pass here, as root and as an unprivileged user', function () {
      assert.equal(checkUserNamespaces().ok, true, formatCheck(checkUserNamespaces()));
      assert.ok(isRoot, 'this test acts as another user: run it as root, as the suites run');
      const r = checkIn(asNobody, 'checkUserNamespaces');
      assert.equal(r.ok, true, formatCheck(r));
    });

    it('are refused with user.max_user_namespaces = 0, and the check names that sysctl', function () {
      // A user namespace of our own where the limit is 0: its processes cannot make another.
      const setup = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"';
      const probe = spawnSync('unshare', ['-Ur', 'sh', '-c', setup, 'sh', 'true']);
      assert.equal(probe.status, 0, `unshare -Ur with the limit set inside it failed: ${probe.stderr}`);
      const r = checkIn(['unshare', '-Ur', 'sh', '-c', setup, 'sh'], 'checkUserNamespaces');
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'refused (unshare(CLONE_NEWUSER): No space left on device)');
      assert.equal(r.fix, 'user namespaces are disabled (user.max_user_namespaces = 0): run `sysctl -w user.max_user_namespaces=15000`');
    });

    it('names a seccomp filter when no sysctl explains a refusal', function () {
      // The refusal is real (the limit is 0); the sysctls are read from an empty directory and the
      // status file says Seccomp: 2, as a container's would: a filter cannot be installed from here.
      const setup = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"';
      assert.equal(spawnSync('unshare', ['-Ur', 'sh', '-c', setup, 'sh', 'true']).status, 0, 'unshare -Ur with the limit set inside it failed');
      const sysctls = join(dir, 'sys');
      mkdirSync(sysctls);
      const status = join(dir, 'status');
      writeFileSync(status, 'Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t1\n');
      const r = checkIn(['unshare', '-Ur', 'sh', '-c', setup, 'sh'], 'checkUserNamespaces', [{ procSys: sysctls, statusFile: status }]);
      assert.equal(r.ok, false);
      assert.match(r.fix ?? '', /^a seccomp filter refuses them \(Seccomp: 2 in \/proc\/self\/status, as in a container/);
    });
  });

  describe('kernel features', () => {
    it('pass on 5.11 and newer, and name what an older kernel lacks', () => {
      assert.equal(checkKernel('5.11.0').ok, true);
      assert.equal(checkKernel('6.1.0-13-amd64').ok, true);
      assert.deepEqual(checkKernel('5.10.0-23-amd64'), {
        name: 'kernel',
        ok: false,
        detail: '5.10.0-23-amd64 lacks close_range CLOSE_RANGE_CLOEXEC (5.11)',
        fix: 'upgrade to Linux 5.11 or newer',
      });
      assert.equal(checkKernel('4.19.0').detail, '4.19.0 lacks pidfd_send_signal (5.1), pidfd_open (5.3), close_range (5.9), close_range CLOSE_RANGE_CLOEXEC (5.11)');
      assert.equal(checkKernel().ok, true, 'this machine runs the cage tests');
    });
  });

  describe('the config directory', () => {
    it('passes when absent, fails naming each file or directory others may read with its chmod, passes once fixed', () => {
      const config = join(dir, 'config', 'wirecage');
      assert.equal(checkConfigDir(config).ok, true);
      mkdirSync(join(config, 'keys'), { recursive: true, mode: 0o700 });
      writeFileSync(join(config, 'config.toml'), 'version = 1\n', { mode: 0o600 });
      writeFileSync(join(config, 'keys', 'work.key'), 'key\n', { mode: 0o600 });
      assert.deepEqual(checkConfigDir(config), { name: 'config directory', ok: true, detail: `${config}: directories 0700, files 0600` });

      chmodSync(config, 0o755);
      chmodSync(join(config, 'keys', 'work.key'), 0o640);
      const r = checkConfigDir(config);
      assert.equal(r.ok, false);
      assert.equal(r.detail, `others may read it: ${config} is 0755, ${join(config, 'keys', 'work.key')} is 0640`);
      assert.equal(r.fix, `run \`chmod 700 ${config} && chmod 600 ${join(config, 'keys', 'work.key')}\``);
      spawnSync('sh', ['-c', r.fix!.replace(/^run `|`$/g, '')]);
      assert.equal(checkConfigDir(config).ok, true);
    });
  });

  describe('the command', () => {
    it('prints one line per check and exits 0 when all passed, 1 otherwise; --json says the same', () => {
      const config = join(dir, 'xdg');
      mkdirSync(join(config, 'wirecage'), { recursive: true, mode: 0o755 });
      const env = { ...process.env, XDG_CONFIG_HOME: config };
      const text = spawnSync(process.execPath, [BIN, 'doctor'], { encoding: 'utf8', env });
      const lines = text.stdout.trim().split('\n');
      assert.deepEqual(lines.map((l) => /^(ok  |FAIL)  ([^:]+):/.exec(l)?.[2]), ['user namespaces', '/dev/net/tun', 'kernel', 'config directory']);
      assert.match(lines[3]!, new RegExp(`^FAIL  config directory: others may read it: ${join(config, 'wirecage')} is 0755; run \`chmod 700 `));
      assert.equal(text.status, 1);

      const json = spawnSync(process.execPath, [BIN, 'doctor', '--json'], { encoding: 'utf8', env });
      const report = JSON.parse(json.stdout) as { ok: boolean; checks: DoctorCheck[] };
      assert.equal(report.ok, false);
      assert.deepEqual(report.checks.map(formatCheck), lines);
      assert.equal(json.status, 1);

      chmodSync(join(config, 'wirecage'), 0o700);
      const fixed = spawnSync(process.execPath, [BIN, 'doctor', '--json'], { encoding: 'utf8', env });
      const after = JSON.parse(fixed.stdout) as { ok: boolean; checks: DoctorCheck[] };
      assert.equal(fixed.status, after.ok ? 0 : 1);
      assert.equal(after.checks[3]!.ok, true);
    });
  });
});
