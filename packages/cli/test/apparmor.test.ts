// `wirecage setup apparmor`: the profile, exactly as rendered for the
// installed helper, and the command run as a user would, as root and not. The
// root runs happen in a private mount namespace of the test's own: /etc is an
// overlay whose writes land in a temp dir, /etc/apparmor.d a temp dir bound
// over it, /sys/kernel/security a tmpfs that shows the AppArmor the case needs;
// nothing of the host's configuration is touched. AppArmor 4's apparmor_parser
// cannot run here (Debian bookworm has 3.0.8, which predates the `userns` rule
// and has no kernel AppArmor to load into), so a stand-in script takes its
// place on PATH and records what it was asked and the file it was given.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userNamespaceHelper } from '@wirecage/netns';
import { attachedPath, attachmentPath, ProfilePathError, renderProfile } from '../src/apparmor/profile.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const NOBODY = 65534;
const FILE = '/etc/apparmor.d/wirecage-userns';

/** The profile for the helper at `path`, written out in full: what Ubuntu's own unconfined-mode profiles look like. */
const expectedProfile = (path: string) => `# Written by \`wirecage setup apparmor\`. Undo:
#   sudo apparmor_parser -R /etc/apparmor.d/wirecage-userns
#   sudo rm /etc/apparmor.d/wirecage-userns
#
# With kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+), an
# unconfined program that makes a user namespace is moved to the
# unprivileged_userns profile, which denies it every capability inside: the
# cage could make neither its network namespace nor its TUN device. This
# profile confines nothing (flags=(unconfined)); it gives one executable,
# wirecage's helper, a name AppArmor can grant \`userns\` to, as Ubuntu's own
# profiles do for chrome or vpnns.
#
# One path is enough. wirecage-userns makes the cage's user namespace and
# execs stage 2 (node) in it; stage 2 execs wirecage-cage, which makes the
# command's user namespace, then execs the command. A program exec'd from an
# unconfined-mode profile stays in it unless another profile attaches to that
# program, so all of them run under this one, the command included: like
# everything the helper starts, it may make user namespaces as it could on a
# system without the restriction.

abi <abi/4.0>,
include <tunables/global>

profile wirecage-userns ${path} flags=(unconfined) {
  userns,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/wirecage-userns>
}
`;

type Kernel = 'no AppArmor' | 'AppArmor 3' | 'AppArmor 4';

interface SetupRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('wirecage setup apparmor', function () {
  this.timeout(30_000);
  const isRoot = process.getuid?.() === 0;
  const helper = realpathSync(userNamespaceHelper);
  let dir: string;
  let apparmorDir: string;
  let etcUpper: string;
  let bin: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-apparmor-'));
    chmodSync(dir, 0o755);
    apparmorDir = join(dir, 'apparmor.d');
    etcUpper = join(dir, 'etc-upper');
    bin = join(dir, 'bin');
    for (const d of [apparmorDir, etcUpper, join(dir, 'etc-work'), bin]) mkdirSync(d);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** apparmor_parser's stand-in: records its argv, the file as it was when loaded, and the directory then; exits with `status`. */
  function parser(status: number, stderr = ''): string {
    const file = join(bin, 'apparmor_parser');
    writeFileSync(
      file,
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/parser-args\n/bin/cat "$2" > ${dir}/parser-saw\n/bin/ls -A /etc/apparmor.d > ${dir}/parser-listing\n` +
        `printf '%s' '${stderr}' >&2\nexit ${status}\n`,
      { mode: 0o755 },
    );
    return file;
  }

  /** Runs `wirecage setup apparmor ARGS` in the private mount namespace, as root or as nobody, with this PATH. */
  function setup(kernel: Kernel, options: { asNobody?: boolean; path?: string; args?: string[] } = {}): SetupRun {
    assert.ok(isRoot, 'this test mounts in a namespace of its own and acts as another user: run it as root, as the suites run');
    const features = '/sys/kernel/security/apparmor/features/namespaces';
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${etcUpper},workdir=${join(dir, 'etc-work')} /etc`,
      'mkdir -p /etc/apparmor.d',
      `mount --bind ${apparmorDir} /etc/apparmor.d`,
      'mount -t tmpfs -o mode=0755 tmpfs /sys/kernel/security',
      kernel === 'no AppArmor' ? ':' : `mkdir -p ${features}`,
      kernel === 'AppArmor 4' ? `: > ${features}/userns_create` : ':',
      // sudo's umask may be 077: the profile must still be readable as AppArmor's files are.
      'umask 077',
      'export PATH="$WANT_PATH"',
      'exec "$@"',
    ].join('\n');
    const user = options.asNobody ? ['/usr/bin/setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'] : [];
    const argv = [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      'sh',
      ...user,
      process.execPath,
      BIN,
      'setup',
      'apparmor',
      ...(options.args ?? []),
    ];
    const r = spawnSync('unshare', argv, {
      encoding: 'utf8',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', WANT_PATH: options.path ?? bin, HOME: dir },
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** What /etc received through the overlay: at most the mount point of apparmor.d (when the host has none), empty. */
  function assertEtcUntouched(): void {
    assert.deepEqual(
      readdirSync(etcUpper).filter((f) => f !== 'apparmor.d'),
      [],
    );
    if (existsSync(join(etcUpper, 'apparmor.d'))) assert.deepEqual(readdirSync(join(etcUpper, 'apparmor.d')), []);
  }

  const restrictedNow = () => {
    try {
      return readFileSync('/proc/sys/kernel/apparmor_restrict_unprivileged_userns', 'utf8').trim() === '1';
    } catch {
      return undefined;
    }
  };

  const installedReport = (first: string, parserPath: string) =>
    [
      `${first}: profile wirecage-userns, attached to ${helper}`,
      `loaded it: ${parserPath} -r ${FILE}`,
      "wirecage's helper, and what it starts (the cage and its command), may now make user namespaces; nothing else changed.",
      ...(restrictedNow() === false
        ? ['(kernel.apparmor_restrict_unprivileged_userns is 0 now: the profile matters once it is 1, as Ubuntu ships it.)']
        : []),
      'It names this installation: after moving or reinstalling wirecage elsewhere, run `sudo wirecage setup apparmor` again.',
      'Check with `wirecage doctor`, as the user who runs the cages.',
      'To undo:',
      `  sudo apparmor_parser -R ${FILE}`,
      `  sudo rm ${FILE}`,
      '',
    ].join('\n');

  describe('the profile', () => {
    it('--print shows it for the installed helper, by its real path, without root', function () {
      assert.ok(isRoot, 'this test acts as another user: run it as root, as the suites run');
      const r = spawnSync(
        'setpriv',
        [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, 'setup', 'apparmor', '--print'],
        {
          encoding: 'utf8',
          env: { PATH: process.env.PATH, HOME: dir }, // oclif looks in HOME for plugins: root's is not nobody's to read
        },
      );
      assert.equal(r.stderr, '');
      assert.equal(r.status, 0);
      assert.equal(r.stdout, expectedProfile(helper));
      assert.match(helper, /^\/[A-Za-z0-9/._+-]+\/wirecage-userns$/, 'a plain path is written as is');
    });

    it('writes any other path as a literal: quoted, its pattern characters escaped; refuses what AppArmor cannot name', () => {
      const odd = '/home/Jane Doe/{x,y}*?[1]^@"q\\w/wirecage-userns';
      const quoted = '"/home/Jane Doe/\\{x\\,y\\}\\*\\?\\[1\\]\\^\\@\\"q\\\\w/wirecage-userns"';
      assert.equal(attachmentPath(odd), quoted);
      assert.equal(renderProfile(odd), expectedProfile(quoted));
      assert.equal(attachedPath(renderProfile(odd)), quoted);
      assert.equal(attachedPath(renderProfile(helper)), helper);
      assert.throws(() => renderProfile('wirecage-userns'), ProfilePathError);
      assert.throws(() => renderProfile('/opt/a\nb/wirecage-userns'), /control characters/);
    });
  });

  describe('as root', () => {
    it('writes the profile 0644 atomically, loads it with apparmor_parser -r, says what it did and how to undo it', () => {
      const stand = parser(0);
      const r = setup('AppArmor 4');
      assert.equal(r.stderr, '');
      assert.equal(r.status, 0);
      assert.equal(r.stdout, installedReport(`wrote ${FILE} (mode 0644)`, stand));
      assert.equal(readFileSync(join(apparmorDir, 'wirecage-userns'), 'utf8'), expectedProfile(helper));
      assert.equal(statSync(join(apparmorDir, 'wirecage-userns')).mode & 0o7777, 0o644);
      // The parser saw the whole file under its final name, and no temp file beside it.
      assert.equal(readFileSync(join(dir, 'parser-args'), 'utf8'), `-r\n${FILE}\n`);
      assert.equal(readFileSync(join(dir, 'parser-saw'), 'utf8'), expectedProfile(helper));
      assert.equal(readFileSync(join(dir, 'parser-listing'), 'utf8'), 'wirecage-userns\n');
      assertEtcUntouched();

      const again = setup('AppArmor 4');
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.stdout, installedReport(`${FILE} already held this profile`, stand));
    });

    it('replaces a profile written for another installation, naming the path it attached to', () => {
      const stand = parser(0);
      writeFileSync(join(apparmorDir, 'wirecage-userns'), expectedProfile('/opt/old/wirecage-userns'));
      const r = setup('AppArmor 4');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, installedReport(`replaced ${FILE} (mode 0644), which attached to /opt/old/wirecage-userns,`, stand));
      assert.equal(readFileSync(join(apparmorDir, 'wirecage-userns'), 'utf8'), expectedProfile(helper));
    });

    it("when apparmor_parser rejects the profile, puts back what was there and shows the parser's words (exit 1)", () => {
      const why = `AppArmor parser error for ${FILE} in profile ${FILE} at line 25: syntax error`;
      parser(1, why);
      const r = setup('AppArmor 4');
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `wirecage: \`${join(bin, 'apparmor_parser')} -r ${FILE}\` failed (${FILE} removed again):\n${why}\n`);
      assert.deepEqual(readdirSync(apparmorDir), []);

      const old = expectedProfile('/opt/old/wirecage-userns');
      writeFileSync(join(apparmorDir, 'wirecage-userns'), old, { mode: 0o644 });
      const again = setup('AppArmor 4');
      assert.equal(again.status, 1);
      assert.match(again.stderr, new RegExp(`failed \\(the previous ${FILE} put back\\)`));
      assert.equal(readFileSync(join(apparmorDir, 'wirecage-userns'), 'utf8'), old);
      assert.deepEqual(readdirSync(apparmorDir), ['wirecage-userns']);
      assertEtcUntouched();
    });

    it('without apparmor_parser on PATH, says so and writes nothing (exit 1)', () => {
      const r = setup('AppArmor 4', { path: join(dir, 'empty') });
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr,
        'wirecage: apparmor_parser is not on PATH: install the apparmor package (it is in /usr/sbin, which sudo puts on PATH); nothing written\n',
      );
      assert.deepEqual(readdirSync(apparmorDir), []);
      assertEtcUntouched();
    });

    it('where the kernel has no AppArmor, or one that does not mediate user namespaces, says there is nothing to do (exit 1)', () => {
      parser(0);
      const none = setup('no AppArmor');
      assert.equal(none.status, 1);
      assert.equal(
        none.stderr,
        'wirecage: this kernel runs no AppArmor (/sys/kernel/security/apparmor is missing), so AppArmor restricts no user namespace here ' +
          'and there is nothing to set up; `wirecage doctor` says what, if anything, refuses them\n',
      );
      const old = setup('AppArmor 3');
      assert.equal(old.status, 1);
      assert.match(
        old.stderr,
        /^wirecage: this kernel's AppArmor does not mediate user namespaces \(\/sys\/kernel\/security\/apparmor\/features\/namespaces\/userns_create is missing/,
      );
      assert.deepEqual(readdirSync(apparmorDir), []);
      assertEtcUntouched();
    });
  });

  describe('as another user', () => {
    it('refuses, saying to run it with sudo or --print, and writes nothing (exit 1)', () => {
      parser(0);
      const r = setup('AppArmor 4', { asNobody: true });
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        `wirecage: writing ${FILE} and loading it takes root: run \`sudo wirecage setup apparmor\` (\`wirecage setup apparmor --print\` shows the profile first)\n`,
      );
      assert.equal(existsSync(join(dir, 'parser-args')), false, 'the parser never ran');
      assert.deepEqual(readdirSync(apparmorDir), []);
      assertEtcUntouched();
    });
  });
});
