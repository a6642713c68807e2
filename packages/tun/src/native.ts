import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { TunError } from './errors.js';

/** Counters of one queue, as native/stats.h keeps them. */
export interface NativeQueueStats {
  rxPackets: number;
  rxBytes: number;
  rxBatches: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
  txRefused: number;
  txErrors: number;
  lastTxErrno: number;
}

/** native/queue.h write outcomes. */
export const WriteResult = { Written: 0, Dropped: 1, Refused: 2, Failed: 3 } as const;
export type WriteResult = (typeof WriteResult)[keyof typeof WriteResult];

export interface NativeQueue {
  readonly fd: number;
  start(cb: (err: TunError | null, buffer?: ArrayBuffer, lengths?: Uint32Array) => void): void;
  stop(): void;
  write(packet: Uint8Array): WriteResult;
  stats(): NativeQueueStats;
  setRef(ref: boolean): void;
  close(): void;
}

interface Addon {
  setErrorFactory(factory: (errno: number, syscall: string, context: string) => Error): void;
  openTun(opts: {
    name: string;
    queues: number;
    netnsFd?: number;
    mtu?: number;
    devicePath?: string;
  }): { fds: number[]; name: string; ifindex: number; mtu: number };
  TunQueue: new (fd: number, maxPacket: number, batchSize: number) => NativeQueue;
}

// src/ (under tsx) and dist/ are siblings of build/, so one relative path serves both.
const addonPath = fileURLToPath(new URL('../build/Release/tun.node', import.meta.url));

function load(): Addon {
  try {
    return createRequire(import.meta.url)(addonPath) as Addon;
  } catch (err) {
    throw new Error(`@wirecage/tun: native addon missing; run \`npm run build\` in packages/tun (${(err as Error).message})`);
  }
}

export const native: Addon = load();
native.setErrorFactory((errno, syscall, context) => new TunError(errno, syscall, context));
