// The error boundary (src/errors.ts, src/command.ts, stage 2): a bug is an
// internal error (exit 125, "please report", the stack on request) in a real
// run of stage 1 and of stage 2, and expected failures keep their words and
// exit statuses. Bugs are forced from outside wirecage's code: a preload that
// breaks process.getuid (stage 1), a CageSpec of the wrong type through the
// library API (stage 2). See fixtures/.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsError } from '@wirecage/netns';
import { TunError } from '@wirecage/tun';
import { KeyFormatError, SecretFileError, parseKeyBase64 } from '@wirecage/wg-engine';
import { EXPECTED_LOWER_ERRORS, WirecageError, expectedFailure, reportFailure } from '../src/errors.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const BREAK_GETUID = fileURLToPath(new URL('./fixtures/getuid-not-a-function.mjs', import.meta.url));
const LAUNCH_BROKEN = fileURLToPath(new URL('./fixtures/launch-broken-spec.mjs', import.meta.url));

describe('error boundary', function () {
  this.timeout(60_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let conf: string;
  const node = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...env, ...extraEnv }, timeout: 50_000 });
  const cli = (args: string[], extraEnv?: NodeJS.ProcessEnv) => node([BIN, ...args], extraEnv);
  const broken = (args: string[], extraEnv?: NodeJS.ProcessEnv) => node(['--import', BREAK_GETUID, BIN, ...args], extraEnv);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-boundary-'));
    // Config, keys and runtime files stay in the test's directory.
    for (const d of ['home', 'config', 'run']) mkdirSync(join(dir, d), { mode: 0o700 });
    env = { PATH: process.env.PATH, HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'config'), XDG_RUNTIME_DIR: join(dir, 'run') };
    conf = join(dir, 'cage.conf');
    const peer = execFileSync('wg', ['pubkey'], { input: execFileSync('wg', ['genkey']), encoding: 'utf8' }).trim();
    // No packet is ever sent: both forced bugs come before the tunnel is up.
    writeFileSync(
      conf,
      `[Interface]\nPrivateKey = ${execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim()}\nAddress = 10.99.0.2/32\n\n[Peer]\nPublicKey = ${peer}\nEndpoint = 127.0.0.1:9\nAllowedIPs = 0.0.0.0/0\n`,
      { mode: 0o600 },
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('a bug (a TypeError) in stage 1', () => {
    it('is an internal error in any command: exit 125, "please report", how to see the stack', () => {
      const r = broken(['show']);
      assert.equal(r.status, 125, r.stderr);
      assert.equal(
        r.stderr,
        'wirecage: internal error, please report: process.getuid is not a function\nwirecage: run it again with WIRECAGE_DEBUG=1 to see where it happened\n',
      );
    });

    it('prints its stack with WIRECAGE_DEBUG=1', () => {
      const r = broken(['show'], { WIRECAGE_DEBUG: '1' });
      assert.equal(r.status, 125, r.stderr);
      assert.match(
        r.stderr,
        /^wirecage: internal error, please report: process\.getuid is not a function\nTypeError: process\.getuid is not a function\n {4}at runtimeDir \(.*runtime-dir\.js:\d+:\d+\)\n/,
      );
    });

    it('in run: exit 125 without the stack, and with it under --log-level debug', () => {
      const quiet = broken(['run', '-c', conf, '--', 'true']);
      assert.equal(quiet.status, 125, quiet.stderr);
      assert.equal(
        quiet.stderr,
        'wirecage: internal error, please report: process.getuid is not a function\nwirecage: run it again with --log-level debug (or WIRECAGE_DEBUG=1) to see where it happened\n',
      );
      const debug = broken(['run', '-c', conf, '--log-level', 'debug', '--', 'true']);
      assert.equal(debug.status, 125, debug.stderr);
      // Stage 1's run is a bundle (scripts/bundle.mjs): its stack names the function, and with the
      // bundle's source maps the source file.
      assert.match(
        debug.stderr,
        /^wirecage: internal error, please report: process\.getuid is not a function\nTypeError: process\.getuid is not a function\n {4}at buildSpec \(.*\.js:\d+:\d+\)\n/,
      );
      const mapped = broken(['run', '-c', conf, '--log-level', 'debug', '--', 'true'], { NODE_OPTIONS: '--enable-source-maps' });
      assert.equal(mapped.status, 125, mapped.stderr);
      assert.match(mapped.stderr, /\n {4}at buildSpec \(.*\/cage\/from-config\.ts:\d+:\d+\)\n/);
    });
  });

  describe('a bug (a TypeError) in stage 2', () => {
    it('is an internal error: exit 125, and the stack at log level debug', () => {
      const quiet = node([LAUNCH_BROKEN, conf, 'warn']);
      assert.equal(quiet.status, 125, quiet.stderr);
      assert.equal(
        quiet.stderr,
        'wirecage: internal error, please report: spec.addresses.map is not a function\nwirecage: run it again with --log-level debug to see where it happened\n',
      );
      const debug = node([LAUNCH_BROKEN, conf, 'debug']);
      assert.equal(debug.status, 125, debug.stderr);
      assert.match(
        debug.stderr,
        /wirecage: internal error, please report: spec\.addresses\.map is not a function\nTypeError: spec\.addresses\.map is not a function\n {4}at configureNetwork \(.*stage2\.js:\d+:\d+\)\n/,
      );
      assert.doesNotMatch(debug.stderr, /PrivateKey|[A-Za-z0-9+/]{43}=/, 'a key reached stderr');
    });
  });

  describe('expected failures keep their words and exit statuses', () => {
    const cases: { what: string; args: string[]; status: number; stderr: RegExp }[] = [
      {
        what: 'run: a config that cannot be read (125)',
        args: ['run', '-c', '/nonexistent/x.conf', '--', 'true'],
        status: 125,
        stderr: /^wirecage: cannot read \/nonexistent\/x\.conf: ENOENT\n$/,
      },
      {
        what: 'check: the same file (1)',
        args: ['check', '/nonexistent/x.conf'],
        status: 1,
        stderr: /^wirecage: cannot read \/nonexistent\/x\.conf: ENOENT\n$/,
      },
      {
        what: 'run: no server NAME nor -c (2)',
        args: ['run'],
        status: 2,
        stderr: /^wirecage: give a server name \(see `wirecage servers`\) or --config FILE\n$/,
      },
      {
        what: "run: an unknown flag, oclif's parse error worded as run's (2)",
        args: ['run', '--bogus', '--', 'true'],
        status: 2,
        stderr: /^wirecage: Nonexistent flag: --bogus\n/,
      },
      {
        what: 'add-server: a bad NAME (2)',
        args: ['add-server', 'bad name', 'https://example.org'],
        status: 2,
        stderr: /^wirecage: server name "bad name" is not valid/,
      },
      {
        what: 'show: no such cage, worded as every wirecage error (1)',
        args: ['show', 'nosuch'],
        status: 1,
        stderr: /^wirecage: no running cage with tunnel nosuch \(looked in .*\)\n$/,
      },
      {
        what: 'remove-server: an unknown NAME (1)',
        args: ['remove-server', 'nosuch'],
        status: 1,
        stderr: /^wirecage: no server named "nosuch" in .*config\.toml\n$/,
      },
    ];
    for (const c of cases) {
      it(c.what, () => {
        const r = cli(c.args);
        assert.equal(r.status, c.status, r.stderr);
        assert.match(r.stderr, c.stderr);
        assert.doesNotMatch(r.stderr, /internal error/);
      });
    }

    it("a system call's failure (Node's own error) is the machine's, not a bug: add-server --token-file DIR exits 1", () => {
      const r = cli(['add-server', 'work', 'https://example.org', '--token-file', join(dir, 'run')]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, 'wirecage: EISDIR: illegal operation on a directory, read\n');
    });

    it("oclif's usage errors keep oclif's wording in the other commands (2)", () => {
      const r = cli(['keygen', '--bogus']);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /Nonexistent flag: --bogus/);
      assert.doesNotMatch(r.stderr, /internal error/);
    });
  });

  describe('classification', () => {
    const caught = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err;
      }
      throw new Error('did not throw');
    };
    const lower = [
      new NetnsError(1, 'unshare'),
      new TunError(13, 'open'),
      new SecretFileError('cannot read x', 'x', 'ENOENT'),
      caught(() => parseKeyBase64('nope')),
    ];

    it("names exactly the lower packages' typed errors, which are expected with their own message", () => {
      assert.ok(lower[3] instanceof KeyFormatError);
      assert.deepEqual(lower.map((e) => (e as Error).name).sort(), [...EXPECTED_LOWER_ERRORS].sort());
      for (const e of lower) assert.equal(expectedFailure(e)?.message, (e as Error).message);
    });

    it('a TypeError, a plain Error or a thrown string is a bug; a WirecageError keeps its exit status', () => {
      for (const e of [new TypeError('x is not a function'), new Error('plain'), 'a string']) assert.equal(expectedFailure(e), null);
      const lines: string[] = [];
      const opts = { failureExit: 1, stack: false, stackHint: 'H', write: (t: string) => lines.push(t) };
      assert.equal(reportFailure(new WirecageError('usage', 2), opts), 2);
      assert.equal(reportFailure(new WirecageError('bad file'), opts), 1);
      assert.equal(reportFailure('a string', opts), 125);
      assert.deepEqual(lines, [
        'wirecage: usage\n',
        'wirecage: bad file\n',
        'wirecage: internal error, please report: a string\n',
        'wirecage: run it again with H to see where it happened\n',
      ]);
    });
  });
});
