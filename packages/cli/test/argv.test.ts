// `wirecage run` splits its own argv (oclif reorders it): which flags take a
// value comes from Run's oclif flag definitions, so a flag added there splits
// right without a second list to keep.
import assert from 'node:assert/strict';
import Run from '../src/commands/run.js';
import { flagsWithValues, splitCommand } from '../src/cage/argv.js';

describe('run argv: flags with values from the oclif definitions', () => {
  const valued = flagsWithValues(Run.flags);

  it('names every valued spelling, long and short, and no boolean flag', () => {
    for (const f of [
      '--config',
      '-c',
      '--dns',
      '--mtu',
      '--metrics-listen',
      '--publish',
      '--share',
      '--log-level',
      '--wg-endpoint',
      '--wg-private-key-file',
    ])
      assert.ok(valued.has(f), f);
    for (const f of ['--gui', '--root', '--ssh-agent', '--offload', '--no-offload', '--dns-override']) assert.ok(!valued.has(f), f);
  });

  it('every flag of run splits from the command after it: a value is taken, a boolean is not', () => {
    for (const [name, def] of Object.entries(Run.flags)) {
      const argv = def.type === 'option' ? [`--${name}`, 'VALUE', 'cmd', '-x'] : [`--${name}`, 'cmd', '-x'];
      assert.deepEqual(splitCommand(argv, valued), { flags: argv.slice(0, -2), command: ['cmd', '-x'] }, name);
    }
  });

  it('splits `run -c x.conf --metrics-listen :9100 curl -s URL` without `--`, and stops at `--`', () => {
    assert.deepEqual(splitCommand(['-c', 'x.conf', '--metrics-listen', ':9100', 'curl', '-s', 'URL'], valued), {
      flags: ['-c', 'x.conf', '--metrics-listen', ':9100'],
      command: ['curl', '-s', 'URL'],
    });
    assert.deepEqual(splitCommand(['--gui', '--', '-c', 'x'], valued), { flags: ['--gui'], command: ['-c', 'x'] });
  });
});
