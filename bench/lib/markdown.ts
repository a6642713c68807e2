// Markdown pieces both reports use (report.ts for the data plane,
// server-report.ts for the servers): number formats, tables, the spread of
// the rounds, and the machine the run was made on.
import type { MachineInfo } from './machine.js';
import type { TransferResult } from './measure.js';

export const gbit = (bps: number | undefined) => (bps === undefined ? '–' : (bps / 1e9).toFixed(2));
export const times = (r: number | null) => (r === null ? '–' : `${r.toFixed(2)}×`);
export const s2 = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));

export function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The reported (median) Gbit/s, with the lowest and highest of the rounds in parentheses when there were several. */
export function spread(median: number | undefined, runs: TransferResult[] | undefined): string {
  if (runs === undefined || runs.length < 2) return gbit(median);
  const all = runs.map((r) => r.bitsPerSecond);
  return `${gbit(median)} (${gbit(Math.min(...all))}–${gbit(Math.max(...all))})`;
}

/** A warning paragraph when the machine was busy enough to skew the run, else null. */
export function busyNote(m: MachineInfo): string | null {
  // The bench itself keeps about two CPUs busy, so only load beyond that at the end counts against the run.
  const loadEnd = m.loadEnd?.[0] ?? 0;
  if (m.loadStart[0]! <= m.nproc * 0.5 && loadEnd <= m.nproc + 2) return null;
  return (
    `**The machine was busy during this run** (1-minute load average ${m.loadStart[0]!.toFixed(2)} at start and ${loadEnd.toFixed(2)} at end on ${m.nproc} CPUs, ` +
    'other work included): absolute numbers are low and the ratios rough.'
  );
}

/** The "## Machine" section. */
export function machineSection(m: MachineInfo): string[] {
  return [
    '## Machine',
    '',
    `- date: ${m.date}`,
    `- nproc: ${m.nproc} (${m.cpuModel})`,
    `- kernel: ${m.kernel}`,
    `- node: ${m.node}`,
    `- wireguard-go: ${m.wireguardGo}; iperf3: ${m.iperf3}`,
    `- wirecage: commit ${m.commit}`,
    `- load average (1/5/15 min) at start: ${m.loadStart.map((l) => l.toFixed(2)).join(' / ')}` +
      (m.loadEnd ? `; at end: ${m.loadEnd.map((l) => l.toFixed(2)).join(' / ')}` : ''),
    '',
  ];
}
