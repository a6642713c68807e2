// `wirecage doctor`'s checks against real conditions made here: a device-like
// file chmod-ed and checked by another user, user namespaces refused in a
// child user namespace whose user.max_user_namespaces is 0, a config
// directory others can read. Refusals the kernel here cannot produce (Ubuntu's
// AppArmor, Debian's unprivileged_userns_clone) are real refusals too: a
// seccomp filter installed for the probe returns the errno those give, and
// the sysctls are read from a directory that says what such a machine says.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userNamespaceHelper } from '@wirecage/netns';
import { renderProfile } from '../src/apparmor/profile.js';
import {
  checkConfigDir,
  checkKernel,
  checkUserNamespaces,
  formatCheck,
  userNamespaceAdvice,
  type DoctorCheck,
} from '../src/doctor/index.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const DOCTOR = fileURLToPath(new URL('../src/doctor/index.ts', import.meta.url));
const CAGE_START = fileURLToPath(new URL('../src/doctor/cage-start.ts', import.meta.url));
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** Runs `script` (an ES module; DOCTOR and CAGE_START are importable by those names) in a fresh process, through `prefix` (setpriv, unshare...); returns what it printed, parsed. */
function runIn<T>(prefix: string[], script: string): T {
  const code = `const DOCTOR = ${JSON.stringify(DOCTOR)}; const CAGE_START = ${JSON.stringify(CAGE_START)};\n${script}`;
  const argv = [...prefix, process.execPath, '--import', 'tsx', '--input-type=module', '-e', code];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** Runs `check(...args)` of src/doctor in a fresh process, through `prefix`. */
function checkIn(prefix: string[], check: string, args: unknown[] = []): DoctorCheck {
  return runIn(prefix, `const d = await import(DOCTOR); process.stdout.write(JSON.stringify(d.${check}(...${JSON.stringify(args)})));`);
}

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));

// Installs a seccomp filter that fails unshare(2) with ERRNO when its flags hold FLAG, then execs
// the rest: the errno a refusing kernel gives, for real, to the probe and everything it starts.
const DENY_UNSHARE = `
import ctypes, errno, os, platform, struct, sys
err, flag, argv = getattr(errno, sys.argv[1]), int(sys.argv[2], 0), sys.argv[3:]
arch, nr = {'x86_64': (0xC000003E, 272), 'aarch64': (0xC00000B7, 97)}[platform.machine()]
ins = lambda code, k, jt=0, jf=0: struct.pack('=HBBI', code, jt, jf, k)
prog = b''.join([
    ins(0x20, 4), ins(0x15, arch, 0, 4),     # seccomp_data.arch: another ABI passes
    ins(0x20, 0), ins(0x15, nr, 0, 2),       # .nr: only unshare
    ins(0x20, 16), ins(0x45, flag, 1, 0),    # .args[0] & FLAG
    ins(0x06, 0x7FFF0000), ins(0x06, 0x00050000 | err)])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure): _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0) != 0:
    sys.exit('seccomp: ' + os.strerror(ctypes.get_errno()))
os.execvp(argv[0], argv)
`;
const CLONE_NEWUSER = '0x10000000';
const CLONE_NEWNET = '0x40000000';

function denyUnshare(errnoName: 'EPERM' | 'EACCES', flag: string): string[] {
  assert.ok(PYTHON, 'python3 is missing: ./scripts/setup installs it');
  return [PYTHON, '-c', DENY_UNSHARE, errnoName, flag];
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

  /** A /proc/sys as `values` says, the rest absent (the kernel has no such knob). */
  function sysctls(name: string, values: Record<string, number>): string {
    const root = join(dir, name);
    for (const [key, value] of Object.entries(values)) {
      const parts = key.split('.');
      mkdirSync(join(root, ...parts.slice(0, -1)), { recursive: true });
      writeFileSync(join(root, ...parts), `${value}\n`);
    }
    return root;
  }
  const ubuntu = {
    'kernel.apparmor_restrict_unprivileged_userns': 1,
    'kernel.unprivileged_userns_clone': 1,
    'user.max_user_namespaces': 15000,
  };
  const permissive = {
    'kernel.apparmor_restrict_unprivileged_userns': 0,
    'kernel.unprivileged_userns_clone': 1,
    'user.max_user_namespaces': 15000,
  };
  const UBUNTU_FIX =
    'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1, as Ubuntu 23.10+ ships it): ' +
    "run `sudo wirecage setup apparmor` once, a profile that lets this wirecage's helper alone make them; " +
    'or lift the restriction for every program: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`';

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
      assert.deepEqual(checkIn(asNobody, 'checkTunDevice', [tun]), {
        name: tun,
        ok: true,
        detail: `readable and writable by uid ${NOBODY} (mode 0666)`,
      });
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
      assert.equal(probe.status, 0, `unshare -Ur with the limit set inside it failed: ${probe.stderr.toString()}`);
      const r = checkIn(['unshare', '-Ur', 'sh', '-c', setup, 'sh'], 'checkUserNamespaces');
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'refused (unshare(CLONE_NEWUSER): No space left on device)');
      assert.equal(r.fix, 'user namespaces are disabled (user.max_user_namespaces = 0): run `sysctl -w user.max_user_namespaces=15000`');
    });

    it("are refused as Ubuntu 23.10+'s AppArmor refuses them, and the fix is `sudo wirecage setup apparmor`, the sysctl only the alternative", function () {
      // Ubuntu lets the user namespace be made and takes its capabilities: the network namespace inside it fails with EPERM.
      const apparmorDir = join(dir, 'apparmor-empty');
      mkdirSync(apparmorDir);
      const r = checkIn(denyUnshare('EPERM', CLONE_NEWNET), 'checkUserNamespaces', [
        { procSys: sysctls('sys-ubuntu', ubuntu), apparmorDir },
      ]);
      assert.deepEqual(r, {
        name: 'user namespaces',
        ok: false,
        detail: 'refused (unshare: unshare failed: Operation not permitted)',
        fix: UBUNTU_FIX,
      });
      // Without its unprivileged_userns profile, Ubuntu refuses the user namespace itself, with EACCES: the same cause, the same fix.
      const denied = checkIn(denyUnshare('EACCES', CLONE_NEWUSER), 'checkUserNamespaces', [
        { procSys: sysctls('sys-ubuntu', ubuntu), apparmorDir },
      ]);
      assert.deepEqual([denied.detail, denied.fix], ['refused (unshare(CLONE_NEWUSER): Permission denied)', UBUNTU_FIX]);
    });

    it('say, when the profile is already written, whether to load it (this wirecage) or to write it again (another)', () => {
      const procSys = sysctls('sys-ubuntu', ubuntu);
      const written = join(dir, 'apparmor-written');
      mkdirSync(written);
      const helper = realpathSync(userNamespaceHelper);
      writeFileSync(join(written, 'wirecage-userns'), renderProfile(helper));
      assert.equal(
        userNamespaceAdvice({ procSys, apparmorDir: written, refused: true }),
        'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1, as Ubuntu 23.10+ ships it), ' +
          `and ${written}/wirecage-userns is written for this wirecage but not in effect: load it with \`sudo apparmor_parser -r ${written}/wirecage-userns\` ` +
          '(or run `sudo wirecage setup apparmor` again); or lift the restriction for every program: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`',
      );
      writeFileSync(join(written, 'wirecage-userns'), renderProfile('/opt/old/wirecage-userns'));
      assert.equal(
        userNamespaceAdvice({ procSys, apparmorDir: written, refused: true }),
        'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1, as Ubuntu 23.10+ ships it), ' +
          `and ${written}/wirecage-userns names /opt/old/wirecage-userns, not this wirecage's helper (${helper}): run \`sudo wirecage setup apparmor\` again; ` +
          'or lift the restriction for every program: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`',
      );
    });

    it("are refused by Debian's kernel.unprivileged_userns_clone = 0, and the check names that sysctl", function () {
      const r = checkIn(denyUnshare('EPERM', CLONE_NEWUSER), 'checkUserNamespaces', [
        { procSys: sysctls('sys-debian', { ...permissive, 'kernel.unprivileged_userns_clone': 0 }) },
      ]);
      assert.deepEqual([r.ok, r.detail], [false, 'refused (unshare(CLONE_NEWUSER): Operation not permitted)']);
      assert.equal(
        r.fix,
        'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0): run `sysctl -w kernel.unprivileged_userns_clone=1`',
      );
    });

    it('name a seccomp filter when no sysctl explains a refusal', function () {
      // A real filter, as Docker's default profile has: the probing process's own status says Seccomp: 2.
      const r = checkIn(denyUnshare('EPERM', CLONE_NEWUSER), 'checkUserNamespaces', [{ procSys: sysctls('sys-permissive', permissive) }]);
      assert.deepEqual([r.ok, r.detail], [false, 'refused (unshare(CLONE_NEWUSER): Operation not permitted)']);
      assert.match(r.fix ?? '', /^a seccomp filter refuses them \(Seccomp: 2 in \/proc\/self\/status, as in a container/);
    });
  });

  describe('the advice a failing `wirecage run` prints', () => {
    it("is the doctor's, for a network namespace refused and for /dev/net/tun not open to the user", function () {
      assert.ok(isRoot, 'this test acts as another user and makes a device node: run it as root, as the suites run');
      // What stage 2 meets: createNetns refused (as nobody here, as under Ubuntu's unprivileged_userns profile
      // there), and a TUN device the user may not open: a copy of /dev/net/tun's node, 0600.
      const tun = join(dir, 'tun-0600');
      assert.equal(spawnSync('mknod', ['-m', '0600', tun, 'c', '10', '200']).status, 0, 'mknod failed');
      const apparmorDir = join(dir, 'apparmor-run');
      mkdirSync(apparmorDir);
      const ubuntuSys = sysctls('sys-run', ubuntu);
      const script = `
        const { createNetns } = await import('@wirecage/netns');
        const { Tun } = await import('@wirecage/tun');
        const { cageStartAdvice } = await import(CAGE_START);
        const out = {};
        try { createNetns(); } catch (err) { out.netns = [err.message, cageStartAdvice(err, ${JSON.stringify({ procSys: ubuntuSys, apparmorDir })})]; }
        try { Tun.open({ devicePath: ${JSON.stringify(tun)}, name: 'wcdoctor%d' }); } catch (err) { out.tun = [err.code, cageStartAdvice(err)]; }
        out.other = cageStartAdvice(new Error('no WireGuard handshake'));
        process.stdout.write(JSON.stringify(out));`;
      const r = runIn<{ netns: [string, string]; tun: [string, string]; other: null }>(asNobody, script);
      assert.deepEqual(r.netns, ['creating a network namespace: unshare failed: EPERM (operation not permitted)', UBUNTU_FIX]);
      assert.deepEqual(r.tun, ['EACCES', `run \`sudo chmod 0666 ${tun}\`, as the distributions' udev rule does`]);
      assert.equal(r.other, null);
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
      assert.equal(
        checkKernel('4.19.0').detail,
        '4.19.0 lacks pidfd_send_signal (5.1), pidfd_open (5.3), close_range (5.9), close_range CLOSE_RANGE_CLOEXEC (5.11)',
      );
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
      spawnSync('sh', ['-c', r.fix.replace(/^run `|`$/g, '')]);
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
      assert.deepEqual(
        lines.map((l) => /^(ok {2}|FAIL) {2}([^:]+):/.exec(l)?.[2]),
        ['user namespaces', '/dev/net/tun', 'kernel', 'config directory'],
      );
      assert.match(
        lines[3]!,
        new RegExp(`^FAIL  config directory: others may read it: ${join(config, 'wirecage')} is 0755; run \`chmod 700 `),
      );
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
