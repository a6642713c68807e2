import { describeErrno } from './errors.js';
import type { NativeQueueStats } from './native.js';

/** Counters of one queue. `tx*` counts what `write()` was given; drops never block. */
export interface QueueStats {
  rxPackets: number;
  rxBytes: number;
  /** onPackets calls; rxPackets / rxBatches is the mean batch size. */
  rxBatches: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  /** The kernel's queue was full (EAGAIN/ENOBUFS): dropped, as a NIC would. */
  txDropped: number;
  /** Zero-length or larger than maxPacketSize: never handed to the kernel. */
  txRefused: number;
  /** The kernel rejected the packet (e.g. EINVAL for one that is not IPv4/IPv6). */
  txErrors: number;
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
