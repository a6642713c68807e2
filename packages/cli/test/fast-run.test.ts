// `wirecage run` skips oclif's start-up (src/fast-run.ts): no command
// discovery, no plugin, only run's own modules (bundled by scripts/bundle.mjs). Checked in a fresh Node with
// a module-resolution hook that lists every ES module resolved, against a
// control (help, which oclif serves) that must see the discovery. And the
// fast path answers exactly as oclif's execute does: the same stderr and exit
// status for run's usage and config errors, the earlier top-level form
// included. No namespace is made here (tests/cage runs cages).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helpFlags, isFastRun } from '../src/fast-run.js';

const CLI = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(CLI, 'bin/run.js');
const PROBE = fileURLToPath(new URL('./fixtures/resolved-modules.mjs', import.meta.url));

describe('the fast path of wirecage run', function () {
  this.timeout(60_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-fast-run-'));
    env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_RUNTIME_DIR: dir };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs bin/run.js with `args` under the probe: its result and every module URL it resolved. */
  function probed(args: string[]): { status: number | null; stdout: string; stderr: string; modules: string[] } {
    const out = join(dir, `modules-${args.join('_').replace(/\W/g, '')}.txt`);
    writeFileSync(out, '');
    const r = spawnSync(process.execPath, ['--import', PROBE, BIN, ...args], {
      encoding: 'utf8',
      env: { ...env, RESOLVED_MODULES_OUT: out },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, modules: readFileSync(out, 'utf8').split('\n').filter(Boolean) };
  }
  const commandModules = (modules: string[]) =>
    modules.filter((u) => u.includes('/packages/cli/dist/commands/')).map((u) => u.replace(/.*\/dist\/commands\//, ''));
  const pluginModules = (modules: string[]) => modules.filter((u) => /\/@oclif\/plugin-/.test(u));

  it('a run imports the run command alone: no other command, no oclif plugin', () => {
    const r = probed(['run', '-c', join(dir, 'missing.conf'), '--', 'true']);
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, /^wirecage: .*missing\.conf/);
    // The run command is in the bundle (scripts/bundle.mjs), which holds run's modules alone.
    assert.deepEqual(commandModules(r.modules), []);
    assert.ok(
      r.modules.some((u) => /\/packages\/cli\/dist\/chunks\/run-\w+\.js$/.test(u)),
      `run's chunk not seen: ${r.modules.join(', ')}`,
    );
    assert.deepEqual(pluginModules(r.modules), []);
  });

  it("control: run's help goes through oclif, whose discovery the probe sees", () => {
    const r = probed(['run', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Run a command in a cage/);
    // A checkout has no oclif.manifest.json: oclif imports every command to list them.
    assert.ok(commandModules(r.modules).includes('doctor.js'), `oclif's discovery not seen: ${commandModules(r.modules).join(', ')}`);
  });

  it('takes run and the top-level legacy form, leaves help to oclif (also -h), not what follows --', () => {
    const help = helpFlags();
    assert.deepEqual([...help].sort(), ['--help', '-h']);
    assert.ok(isFastRun(['run', '-c', 'x.conf', '--', 'curl', '--help'], help));
    assert.ok(isFastRun(['run', 'work', 'firefox'], help));
    assert.ok(!isFastRun(['run', '-c', 'x.conf', '--help'], help));
    assert.ok(!isFastRun(['run', '-h'], help));
    assert.ok(!isFastRun(['show'], help));
    assert.ok(!isFastRun(['--version'], help));
    assert.ok(!isFastRun([], help));
  });

  describe("answers as oclif's execute does", () => {
    let conf: string;
    before(() => {
      conf = join(dir, 'bad.conf');
      writeFileSync(conf, '[Interface]\nAddress = 10.0.0.2/32\n', { mode: 0o600 });
    });
    const viaOclif = (args: string[]) =>
      spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { execute } from '@oclif/core'; await execute({ dir: ${JSON.stringify(BIN)}, args: ${JSON.stringify(args)} });`,
        ],
        {
          encoding: 'utf8',
          cwd: CLI,
          env,
        },
      );
    const cases: [string, () => string[]][] = [
      ['an unknown flag', () => ['--bogus', '-c', conf]],
      ['an integer out of range', () => ['-c', conf, '--mtu', '1']],
      ['a value not among the options', () => ['-c', conf, '--log-level', 'loud']],
      ['no server name nor -c', () => []],
      ['a config error', () => ['-c', conf, '--', 'true']],
      ['--wg-* flags with -c', () => ['-c', conf, '--wg-public-key', 'x', '--', 'true']],
    ];
    for (const [what, args] of cases) {
      it(what, () => {
        const fast = spawnSync(process.execPath, [BIN, 'run', ...args()], { encoding: 'utf8', env });
        const oclif = viaOclif(['run', ...args()]);
        assert.notEqual(fast.status, 0, fast.stderr);
        assert.deepEqual(
          { status: fast.status, stdout: fast.stdout, stderr: fast.stderr },
          { status: oclif.status, stdout: oclif.stdout, stderr: oclif.stderr },
        );
      });
    }

    it('the earlier top-level form (no word run)', () => {
      const args = [
        '--wg-public-key',
        'x',
        '--wg-private-key-file',
        join(dir, 'missing.key'),
        '--wg-endpoint',
        '127.0.0.1:9',
        '--wg-address',
        '10.0.0.2',
        '--',
        'true',
      ];
      const fast = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
      const oclif = viaOclif(['run', ...args]);
      assert.notEqual(fast.status, 0, fast.stderr);
      assert.deepEqual({ status: fast.status, stderr: fast.stderr }, { status: oclif.status, stderr: oclif.stderr });
    });
  });
});
