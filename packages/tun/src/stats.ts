import { describeErrno } from './errors.js';
import type { NativeQueueStats } from './native.js';

/** Counters of one queue (documented on NativeQueueStats), with the last errno by name. */
export interface QueueStats extends Omit<NativeQueueStats, 'lastTxErrno'> {
  /** errno name of the latest txError, if any. */
  lastTxError: string | undefined;
}

export interface TunStats extends Omit<QueueStats, 'lastTxError'> {
  queues: QueueStats[];
}

export function queueStats(s: NativeQueueStats): QueueStats {
  const { lastTxErrno, ...counters } = s;
  const lastTxError = lastTxErrno ? describeErrno(lastTxErrno)[0] : undefined;
  return { ...counters, lastTxError };
}

const counterKeys = [
  'rxPackets',
  'rxBytes',
  'rxBatches',
  'rxErrors',
  'txPackets',
  'txBytes',
  'txDropped',
  'txRefused',
  'txErrors',
] as const;

export function sumStats(queues: QueueStats[]): TunStats {
  const total = Object.fromEntries(counterKeys.map((k) => [k, 0])) as Record<(typeof counterKeys)[number], number>;
  for (const q of queues) for (const k of counterKeys) total[k] += q[k];
  return { ...total, queues };
}
