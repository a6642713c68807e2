import { fileURLToPath } from 'node:url';
import { loadAddon, type GlueAddon } from '@wirecage/napi-glue';
import { TunError } from './errors.js';
import type { ReadableWatch } from './readable-watch.js';

/** Counters of one queue, as native/stats.h keeps them. `tx*` counts what `write()` was given; drops never block. */
export interface NativeQueueStats {
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

export interface NativeUdpSocket {
  readonly fd: number;
  readonly port: number;
  readonly family: 4 | 6;
  sendTo(bytes: Uint8Array, family: 4 | 6, addr: Uint8Array, port: number, scope?: number): boolean;
  stats(): { sent: number; sendDropped: number };
  close(): void;
}

/** Counters of one poller or emitter, as native/step_io.h keeps them. */
export interface NativeStepStats {
  syscalls: number;
  /** Pollers: packets published into the ring; emitters: packets written/sent. */
  packets: number;
  bytes: number;
  /** Pollers: reads that published; emitters: rounds that had finished slots. */
  batches: number;
  /** Failed syscalls (pollers) or packets that could not be emitted (emitters). */
  errors: number;
  /** Pollers: packets dropped because the slot at HEAD was not FREE. */
  dropsFull: number;
  /** Pollers: packets larger than a slot's data area, dropped. */
  truncated: number;
  /** UDP emitter: messages sent with UDP GSO, and the datagrams they carried. */
  gsoSends: number;
  gsoSegments: number;
  /** UDP emitter: GSO messages the kernel refused; their slots were resent one datagram each. */
  gsoRefused: number;
  /** udpPoller: coalesced (GRO) receives, and the datagrams split out of them. */
  groReceives: number;
  groSegments: number;
  /** UDP emitter: GSO in use (false when disabled, or after the kernel refused it). */
  gsoActive: boolean;
  /** udpPoller: UDP_GRO accepted by the socket. */
  groActive: boolean;
  lastErrno: number;
  fatal?: TunError;
}

export interface NativeRingStep {
  /** Closes its fd dup; read() and emit() then do nothing. */
  close(): void;
  stats(): NativeStepStats;
  /** Emitter kinds only: sends what is finished from TAIL on, on the calling thread; slots freed. */
  emit(): number;
  /** Poller kinds only: one batch from the fd into free slots, on the calling thread, without waiting; slots published. */
  read(): number;
}

export interface NativeRingLayout {
  magic: number;
  controlBytes: number;
  slotHeaderBytes: number;
  control: Record<string, number>;
  slot: Record<string, number>;
  state: Record<string, number>;
}

interface Addon extends GlueAddon {
  openTun(opts: {
    name: string;
    queues: number;
    netnsFd?: number;
    mtu?: number;
    devicePath?: string;
    offload?: boolean;
    deleteWithNetns?: boolean;
  }): { fds: number[]; name: string; ifindex: number; mtu: number; vnetHdr: boolean; offloads: number };
  TunQueue: new (fd: number, maxPacket: number, batchSize: number, vnetHdr?: boolean) => NativeQueue;
  setThreadName(name: string): void;
  openUdp(opts: { address?: string; port?: number; family: 0 | 4 | 6; netnsFd?: number; reusePort?: boolean }): {
    fd: number;
    family: 4 | 6;
  };
  pollIn(fdA: number, fdB: number, timeoutMs: number): number;
  UdpSocket: new (fd: number) => NativeUdpSocket;
  ReadableWatch: new (fd: number, onReadable: (err: TunError | null) => void) => ReadableWatch;
  /** native/ring.h's offsets and values, for the test that src/ring.ts agrees. */
  ringLayout(): NativeRingLayout;
  RingStep: new (kind: string, fd: number, ring: Int32Array, options: { batch?: number; gso?: boolean; gro?: boolean }) => NativeRingStep;
}

// src/ (under tsx) and dist/ are both one level below the package root.
export const native: Addon = loadAddon<Addon>('@wirecage/tun', fileURLToPath(new URL('..', import.meta.url)), TunError).addon;
