// bench/results/dataplane.svg: receiver throughput per test, one bar per
// pair, grouped by test, each bar labelled with its value and its ratio to
// the anchor.
import { renderBarChart } from './bar-chart.js';
import { TESTS } from './measure.js';
import { PAIR_TITLES } from './pairs.js';
import { ANCHOR, type BenchRun } from './results.js';
import type { PairName } from './options.js';

const COLORS: Record<PairName, string> = {
  'wg-wg': '#8a8f98',
  'cage-wg': '#2f6db5',
  'cage-cage': '#e07b24',
  'eng-wg': '#5b9bd5',
};

export function renderChart(run: BenchRun): string {
  const m = run.machine;
  return renderBarChart({
    width: 860,
    height: 480,
    title: 'wirecage data plane: throughput at the receiver, Gbit/s (× = ratio to the anchor)',
    subtitle: `median of ${run.options.rounds} × ${run.options.duration} s iperf3 runs, MTU 1420, ${m.nproc} CPUs (load ${m.loadStart[0]!.toFixed(2)} at start), ${m.kernel}, Node ${m.node}, ${m.date.slice(0, 10)}`,
    yLabel: 'Gbit/s',
    series: run.pairs.map((p) => ({ label: PAIR_TITLES[p.name], color: COLORS[p.name], anchor: p.name === ANCHOR })),
    groups: TESTS.map((t) => t.title),
    bps: (g, s) => run.pairs[s]!.transfers[TESTS[g]!.id]?.bitsPerSecond,
    legend: { fontSize: 13, charWidth: 7.4 },
    bars: { maxWidth: 56, fill: 0.78, gap: 2 },
  });
}
