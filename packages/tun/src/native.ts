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

export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';

export interface NativeUdpSocket {
  readonly fd: number;
  readonly port: number;
  readonly family: 4 | 6;
  sendTo(bytes: Uint8Array, family: 4 | 6, addr: Uint8Array, port: number, scope?: number): boolean;
  stats(): { sent: number; sendDropped: number };
  close(): void;
}

/** Counters of one pump thread, as native/pump_loop.h keeps them. */
export interface NativePumpStats {
  syscalls: number;
  packets: number;
  bytes: number;
  batches: number;
  errors: number;
  dropsFull: number;
  truncated: number;
  gsoSends: number;
  gsoSegments: number;
  gsoRefused: number;
  groReceives: number;
  groSegments: number;
  gsoActive: boolean;
  groActive: boolean;
  lastErrno: number;
  fatal?: TunError;
}

export interface NativePump {
  readonly running: boolean;
  stop(): void;
  stats(): NativePumpStats;
}

interface Addon {
  setErrorFactory(factory: (errno: number, syscall: string, context: string) => Error): void;
  openTun(opts: {
    name: string;
    queues: number;
    netnsFd?: number;
    mtu?: number;
    devicePath?: string;
    offload?: boolean;
  }): { fds: number[]; name: string; ifindex: number; mtu: number; vnetHdr: boolean; offloads: number };
  TunQueue: new (fd: number, maxPacket: number, batchSize: number, vnetHdr?: boolean) => NativeQueue;
  futexWait(words: Int32Array, index: number, expected: number, timeoutMs: number): FutexWaitResult;
  futexWake(words: Int32Array, index: number, count: number): number;
  openUdp(opts: { address?: string; port?: number; family: 0 | 4 | 6; netnsFd?: number }): { fd: number; family: 4 | 6 };
  UdpSocket: new (fd: number) => NativeUdpSocket;
  RingPump: new (
    kind: string,
    fd: number,
    ring: Int32Array,
    doorbell: Int32Array | null,
    options: { batch?: number; gso?: boolean; gro?: boolean },
  ) => NativePump;
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
