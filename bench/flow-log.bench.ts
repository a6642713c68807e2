// Flow-log bench: what `wirecage run --flow-log` costs a cage's TCP transfer.
// Two cage-wg pairs (a cage against wireguard-go, dataplane.bench.ts's), one
// started with --flow-log FILE, measured alternately test by test in the same
// run: throughput, the cage's CPU per GB and the machine's (conntrack's work is
// in the kernel, so only the machine's total shows it). Writes
// bench/results/flow-log.md and prints it. Needs what dataplane.bench.ts needs.
//
//   node --import tsx flow-log.bench.ts [--duration S] [--rounds N] [--out DIR]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { machineInfo } from './lib/machine.js';
import { TESTS, runTransfer } from './lib/measure.js';
import { buildPair, type Pair } from './lib/pairs.js';
import { BenchSession } from './lib/session.js';
import { busyCpuSeconds } from './lib/system-cpu.js';
import { renderFlowLogReport, summarize, type FlowLogRun, type Variant } from './lib/flow-log-report.js';
import { wholeNumber } from './lib/whole-number.js';

const USAGE = 'usage: flow-log.bench.ts [--duration S] [--rounds N] [--out DIR]';
const session = new BenchSession('flow-log');
const { log, newLab, step, teardownAll } = session;

function options() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { duration: { type: 'string' }, rounds: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  const whole = (name: string, text: string) => wholeNumber(name, text, 1, USAGE);
  return {
    duration: whole('--duration', values.duration ?? '5'),
    rounds: whole('--rounds', values.rounds ?? '3'),
    outDir: values.out ?? fileURLToPath(new URL('./results/', import.meta.url)),
  };
}

let opts: ReturnType<typeof options>;
try {
  opts = options();
} catch (e) {
  process.stderr.write(`flow-log: ${(e as Error).message}\n`);
  process.exit(2);
}
const machine = machineInfo(fileURLToPath(new URL('..', import.meta.url)));
const tests = TESTS.filter((t) => t.id === 'tcp' || t.id === 'tcp-r');
const runs: FlowLogRun[] = [];
const tables = { off: '', on: '' } as Record<Variant, string>;
let logFile = '';
let logLines: number;

try {
  const pairs = {} as Record<Variant, Pair>;
  for (const variant of ['off', 'on'] as const) {
    const lab = newLab();
    const flags = variant === 'on' ? ['--flow-log', (logFile = join(await lab.tempDir(), 'flows.jsonl'))] : [];
    log(`building the cage ${variant === 'on' ? 'with' : 'without'} --flow-log in lab ${lab.id}`);
    pairs[variant] = await step(() => buildPair(lab, 'cage-wg', flags, os.availableParallelism()));
    tables[variant] = (await pairs[variant].left.exec('nft', ['list', 'tables'])).stdout;
  }
  for (let round = 1; round <= opts.rounds; round++) {
    for (const test of tests) {
      // Which cage goes first alternates, so a drift in the machine's load favours neither.
      const order: Variant[] = round % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
      for (const variant of order) {
        const busy0 = busyCpuSeconds();
        const transfer = await step(() => runTransfer(pairs[variant], test, opts.duration, '0'));
        runs.push({ test: test.id, variant, transfer, machineCpu: busyCpuSeconds() - busy0 });
        log(
          `round ${round} ${test.id} flow log ${variant}: ${(transfer.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, cage CPU ${transfer.cpu.left.toFixed(2)} s`,
        );
      }
    }
  }
  // Read before the lab's teardown removes it: the log proves the flag was at work during the runs.
  logLines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean).length;
} finally {
  await teardownAll();
}

machine.loadEnd = os.loadavg();
const report = renderFlowLogReport({ machine, duration: opts.duration, rounds: opts.rounds, runs, tables, logLines }, tests);
mkdirSync(opts.outDir, { recursive: true });
writeFileSync(join(opts.outDir, 'flow-log.md'), report);
console.log(report);
for (const t of tests) {
  const [off, on] = [summarize(runs, t.id, 'off'), summarize(runs, t.id, 'on')];
  log(`${t.id}: ${(off.gbps / 1e9).toFixed(2)} -> ${(on.gbps / 1e9).toFixed(2)} Gbit/s with the flag`);
}
log(`wrote ${join(opts.outDir, 'flow-log.md')}`);
