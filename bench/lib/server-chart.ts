// bench/results/server.svg: throughput through each server, one group per
// direction, each bar labelled with its Gbit/s and its ratio to the anchor.
import { renderBarChart } from './bar-chart.js';
import { ANCHOR_SETUP, SETUPS, SETUP_TITLES, type ServerSetup } from './server-labs.js';
import type { ServerTestId } from './server-measure.js';
import { bps, type ServerBenchRun } from './server-report.js';

const COLORS: Record<ServerSetup, string> = { userspace: '#2f6db5', kernel: '#e07b24', 'wg-go': '#8a8f98' };
const GROUPS: { id: ServerTestId; title: string }[] = [
  { id: 'tcp', title: 'TCP, cage → lab host' },
  { id: 'tcp-r', title: 'TCP, lab host → cage (-R)' },
];

export function renderServerChart(run: ServerBenchRun): string {
  const m = run.machine;
  return renderBarChart({
    width: 760,
    height: 420,
    title: 'cage → server → lab host: Gbit/s (× = ratio to the anchor)',
    subtitle: `median of ${run.rounds} × ${run.duration} s iperf3 runs, MTU 1420, ${m.nproc} CPUs (load ${m.loadStart[0]!.toFixed(2)} at start), ${m.kernel}, ${m.date.slice(0, 10)}`,
    series: SETUPS.map((s) => ({ label: SETUP_TITLES[s], color: COLORS[s], anchor: s === ANCHOR_SETUP })),
    groups: GROUPS.map((g) => g.title),
    bps: (g, s) => bps(run, SETUPS[s]!, GROUPS[g]!.id),
    legend: { fontSize: 12, charWidth: 6.6 },
    bars: { maxWidth: 64, fill: 0.7, gap: 3 },
  });
}
