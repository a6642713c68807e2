// What one bench run produced, as the report and the chart read it.
import type { EndpointKind } from './endpoint.js';
import type { MachineInfo } from './machine.js';
import type { PingResult, TestId, TransferResult } from './measure.js';
import type { BenchOptions, PairName } from './options.js';

export interface PairResult {
  name: PairName;
  kinds: { left: EndpointKind; right: EndpointKind };
  /** Per test, the run with the median throughput of its rounds. */
  transfers: Partial<Record<TestId, TransferResult>>;
  /** Per test, every round's run in the order they ran. */
  rounds: Partial<Record<TestId, TransferResult[]>>;
  /** The round with the median overhead (tunnel median − veth median). */
  ping?: PingResult;
  /** Every round's ping series, in the order they ran. */
  pingRounds?: PingResult[];
  /** VmHWM in bytes: the endpoint process, and the whole program (for wirecage: stage 1 + helper + stage 2). */
  rss: { left: number; right: number; leftProgram: number; rightProgram: number };
}

export interface BenchRun {
  options: BenchOptions;
  machine: MachineInfo;
  /** What happened to --workers: passed on, not supported by this wirecage, or not asked for. */
  workersNote: string;
  pairs: PairResult[];
  /** Wall time of the whole run, seconds. */
  elapsed: number;
}

export const ANCHOR: PairName = 'wg-wg';

/** `x / anchor` or null when either is missing or the anchor is zero. */
export function ratio(x: number | undefined, anchor: number | undefined): number | null {
  if (x === undefined || anchor === undefined || anchor === 0) return null;
  return x / anchor;
}

/** CPU seconds per 10^9 payload bytes. */
export function cpuPerGB(cpuSeconds: number, bytes: number): number | undefined {
  return bytes > 0 ? cpuSeconds / (bytes / 1e9) : undefined;
}

/** The run with the median throughput (the lower middle one for an even count), reported whole so its figures stay consistent. */
export function medianRun(runs: TransferResult[]): TransferResult {
  if (runs.length === 0) throw new Error('medianRun: no runs');
  const sorted = [...runs].sort((a, b) => a.bitsPerSecond - b.bitsPerSecond);
  return sorted[(sorted.length - 1) >> 1]!;
}

/** The ping round with the median overhead (the lower middle one for an even count). */
export function medianPing(runs: PingResult[]): PingResult {
  if (runs.length === 0) throw new Error('medianPing: no runs');
  const sorted = [...runs].sort((a, b) => a.medianMs - a.outerMedianMs - (b.medianMs - b.outerMedianMs));
  return sorted[(sorted.length - 1) >> 1]!;
}
