// bench/results/flow-log.md: a cage's TCP throughput and CPU per GB with and
// without --flow-log, measured interleaved in one run (flow-log.bench.ts).
import { machineSection, busyNote, table, gbit } from './markdown.js';
import type { MachineInfo } from './machine.js';
import type { TransferResult } from './measure.js';

export type Variant = 'off' | 'on';

export interface FlowLogRun {
  test: string;
  variant: Variant;
  transfer: TransferResult;
  /** The machine's busy CPU seconds during the transfer (every process and the kernel). */
  machineCpu: number;
}

export interface FlowLogBench {
  machine: MachineInfo;
  duration: number;
  rounds: number;
  runs: FlowLogRun[];
  /** `nft list tables` in each cage's network namespace. */
  tables: Record<Variant, string>;
  /** Lines the flag's cage wrote to its flow log. */
  logLines: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const perGb = (seconds: number, bytes: number) => seconds / (bytes / 1e9);
const pct = (on: number, off: number) => `${on >= off ? '+' : ''}${(((on - off) / off) * 100).toFixed(0)} %`;

export function summarize(runs: FlowLogRun[], test: string, variant: Variant) {
  const mine = runs.filter((r) => r.test === test && r.variant === variant);
  return {
    gbps: median(mine.map((r) => r.transfer.bitsPerSecond)),
    range: [Math.min(...mine.map((r) => r.transfer.bitsPerSecond)), Math.max(...mine.map((r) => r.transfer.bitsPerSecond))] as const,
    cageCpuPerGb: median(mine.map((r) => perGb(r.transfer.cpu.left, r.transfer.bytes))),
    machineCpuPerGb: median(mine.map((r) => perGb(r.machineCpu, r.transfer.bytes))),
  };
}

export function renderFlowLogReport(b: FlowLogBench, tests: { id: string; title: string }[]): string {
  const rows: string[][] = [];
  for (const t of tests) {
    const off = summarize(b.runs, t.id, 'off');
    const on = summarize(b.runs, t.id, 'on');
    for (const [v, s] of [
      ['off', off],
      ['on', on],
    ] as const) {
      rows.push([
        t.title,
        v === 'on' ? '`--flow-log FILE`' : 'no flag',
        `${gbit(s.gbps)} (${gbit(s.range[0])}–${gbit(s.range[1])})`,
        s.cageCpuPerGb.toFixed(2),
        s.machineCpuPerGb.toFixed(2),
      ]);
    }
    rows.push([
      t.title,
      'on vs off',
      pct(on.gbps, off.gbps),
      pct(on.cageCpuPerGb, off.cageCpuPerGb),
      pct(on.machineCpuPerGb, off.machineCpuPerGb),
    ]);
  }
  const busy = busyNote(b.machine);
  const overlap = tests.every((t) => {
    const [off, on] = [summarize(b.runs, t.id, 'off'), summarize(b.runs, t.id, 'on')];
    return on.range[0] <= off.range[1] && off.range[0] <= on.range[1];
  });
  const verdict = overlap
    ? "In every test the two cages' throughput ranges overlap: the flag's cost is below what this run can resolve (differences of either sign are the machine's noise)."
    : "In at least one test the ranges do not overlap: the difference there is larger than this run's noise.";
  return [
    "# The flow log's cost: a cage with and without `--flow-log`",
    '',
    `One run of \`node --import tsx flow-log.bench.ts\` (bench/): two \`wirecage run\` cages against wireguard-go, identical but for \`--flow-log FILE\`, ${b.rounds} rounds of ${b.duration} s iperf3 runs, the two cages alternating test by test so the runs compared are seconds apart. Figures are medians of the rounds (range in parentheses). "cage CPU" is the cage's stage 2 process (the engine); "machine CPU" is every CPU's busy time during the run (/proc/stat), which is where conntrack's work shows (it runs in the kernel, in whichever context moves the packet) but which also holds whatever else the machine did.`,
    '',
    ...(busy ? [busy, ''] : []),
    ...table(['test', 'cage', 'Gbit/s', 'cage CPU s/GB', 'machine CPU s/GB'], rows),
    '',
    verdict,
    '',
    '## Without the flag nothing of the flow log is there',
    '',
    `- The cage's netfilter (\`nft list tables\` in its network namespace): without the flag \`${b.tables.off.trim() || '(none)'}\`; with it \`${b.tables.on.trim().replace(/\n/g, '; ')}\`. Without the flag the namespace has no conntrack user, so the kernel tracks nothing there.`,
    '- No module of the flow log is loaded by stage 2 or the named cage without the flag: packages/cli/test/flow-log-off.test.ts checks it on dist/.',
    `- The flagged cage's log got ${b.logLines} lines during the runs (each iperf3 connection's start; its end once conntrack lets the entry go).`,
    '',
    ...machineSection(b.machine),
  ].join('\n');
}
