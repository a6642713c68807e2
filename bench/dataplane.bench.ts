// Data-plane bench: wireguard-go <-> wireguard-go (the anchor), a `wirecage
// run` cage <-> wireguard-go, and a cage <-> a second cage, measured side by
// side in one run on one machine: iperf3 TCP (1 stream, 4 streams, reverse),
// UDP at 1300-byte datagrams, ping round trips, CPU seconds per GB and peak
// RSS of every endpoint process. Writes bench/results/dataplane.md and
// dataplane.svg and prints the report. Needs root, wireguard-go, wg, iperf3,
// nsenter and a built tree (`npm run build`).
//
//   npm run bench:dataplane -w bench -- [--duration S] [--rounds N] [--only PAIR[,PAIR]] [--workers N]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { renderChart } from './lib/chart.js';
import { machineInfo } from './lib/machine.js';
import { TESTS, runPing, runTransfer, type TestId } from './lib/measure.js';
import { parseOptions } from './lib/options.js';
import { buildPair, type Pair } from './lib/pairs.js';
import { peakRssBytes } from './lib/procfs.js';
import { renderReport } from './lib/report.js';
import { medianPing, medianRun, type BenchRun, type PairResult } from './lib/results.js';
import { BenchSession, wirecageRunHelp } from './lib/session.js';

const session = new BenchSession('dataplane');
const { log, newLab, step, teardownAll } = session;

const opts = (() => {
  try {
    return parseOptions(process.argv.slice(2), process.env, fileURLToPath(new URL('./results/', import.meta.url)));
  } catch (e) {
    process.stderr.write(`dataplane: ${(e as Error).message}\n`);
    process.exit(2);
  }
})();
const machine = machineInfo(fileURLToPath(new URL('..', import.meta.url)));

// Only the cage pairs run `wirecage run`; the eng-* pairs need no CLI.
const help = opts.pairs.some((p) => p.startsWith('cage-')) ? await wirecageRunHelp() : '--workers';
const cageFlags: string[] = [];
let workersNote: string;
if (opts.workers === null) {
  workersNote = 'not given: the engine’s default';
} else if (/--workers\b/.test(help)) {
  cageFlags.push('--workers', String(opts.workers));
  workersNote = `\`--workers ${opts.workers}\` passed to both cages`;
} else {
  workersNote = `${opts.workers} asked for, but this \`wirecage run\` has no --workers flag, so it was left out`;
  log(`warning: ${workersNote}`);
}

const results: PairResult[] = [];
try {
  const pairs: Pair[] = [];
  for (const name of opts.pairs) {
    const lab = newLab();
    log(`building ${name} in lab ${lab.id}`);
    const pair = await step(() => buildPair(lab, name, cageFlags, opts.workers ?? os.availableParallelism()));
    log(
      `  left ${pair.left.kind} pid ${pair.left.pid} (${pair.left.address}), right ${pair.right.kind} pid ${pair.right.pid} (${pair.right.address})`,
    );
    pairs.push(pair);
    results.push({
      name,
      kinds: { left: pair.left.kind, right: pair.right.kind },
      transfers: {},
      rounds: {},
      rss: { left: 0, right: 0, leftProgram: 0, rightProgram: 0 },
    });
  }
  // Test by test across the pairs, so each comparison is made close together in time on a shared machine;
  // whole rounds repeat that, and the median run per pair and test is reported.
  for (let round = 1; round <= opts.rounds; round++) {
    for (const [i, pair] of pairs.entries()) {
      const g = await step(() => runPing(pair, opts.pings));
      (results[i]!.pingRounds ??= []).push(g);
      log(
        `round ${round} ping ${pair.name}: median ${g.medianMs.toFixed(3)} ms (veth ${g.outerMedianMs.toFixed(3)} ms, overhead ${(g.medianMs - g.outerMedianMs).toFixed(3)} ms), ${g.received}/${g.sent} replies`,
      );
    }
    for (const test of TESTS) {
      for (const [i, pair] of pairs.entries()) {
        const r = await step(() => runTransfer(pair, test, opts.duration, opts.udpBitrate));
        (results[i]!.rounds[test.id] ??= []).push(r);
        const udp = r.udp ? `, ${Math.round(r.udp.packetsPerSecond)} pkt/s received, ${r.udp.lostPercent.toFixed(1)} % lost` : '';
        log(
          `round ${round} ${test.id} ${pair.name}: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s${udp}; CPU left ${r.cpu.left.toFixed(2)} s, right ${r.cpu.right.toFixed(2)} s`,
        );
      }
    }
  }
  for (const res of results) for (const [id, runs] of Object.entries(res.rounds)) res.transfers[id as TestId] = medianRun(runs);
  for (const res of results) if (res.pingRounds) res.ping = medianPing(res.pingRounds);
  for (const [i, pair] of pairs.entries()) {
    const program = (e: Pair['left']) => [e.pid, ...e.otherPids].reduce((sum, pid) => sum + peakRssBytes(pid), 0);
    results[i]!.rss = {
      left: peakRssBytes(pair.left.pid),
      right: peakRssBytes(pair.right.pid),
      leftProgram: program(pair.left),
      rightProgram: program(pair.right),
    };
  }
} finally {
  await teardownAll();
}

machine.loadEnd = os.loadavg();
const benchRun: BenchRun = { options: opts, machine, workersNote, pairs: results, elapsed: (Date.now() - session.started) / 1000 };
const report = renderReport(benchRun);
mkdirSync(opts.outDir, { recursive: true });
writeFileSync(join(opts.outDir, 'dataplane.md'), report);
writeFileSync(join(opts.outDir, 'dataplane.svg'), renderChart(benchRun));
console.log(report);
log(`wrote ${join(opts.outDir, 'dataplane.md')} and dataplane.svg`);
