import { fileURLToPath } from 'node:url';
import { loadAddon, type GlueAddon } from '@wirecage/napi-glue';
import { NetnsError } from './errors.js';
import type { IcmpMessage, IcmpSocketOptions } from './icmp.js';
import type { NetnsSocketOptions, OrigDstDatagram, SocketErrorEntry } from './sockets.js';
import type { UnixDatagram } from './unix-dgram.js';

/** Shapes of what the addon (native/*.cc) takes and returns; the socket calls use the public ones of sockets.ts and icmp.ts. */
export interface NativeLink {
  index: number;
  name: string;
  flags: number;
  mtu: number;
  kind: string | null;
}
export interface NativeAddress {
  index: number;
  family: 4 | 6;
  address: string;
  prefixLen: number;
  flags: number;
  scope: number;
}
export interface NativeRoute {
  family: 4 | 6;
  dst: string;
  prefixLen: number;
  oif: number | null;
  gateway: string | null;
  source: string | null;
  metric: number | null;
  table: number;
  type: number;
  scope: number;
  protocol: number;
}
export interface NativeSpawnPlan {
  file: string;
  argv: string[];
  env: string[];
  cwd?: string;
  netnsFd?: number;
  mounts?: { source: string; target: string; readonly?: boolean; create?: boolean }[];
  tmpfs?: { path: string; mode?: number; uid?: number; gid?: number }[];
  dirs?: { path: string; mode?: number; uid?: number; gid?: number }[];
  sysctls?: { path: string; value: string }[];
  hide?: string[];
  userns?: { uidMap: string; gidMap: string };
  dropCapabilities?: boolean;
  noNewPrivs?: boolean;
  newSession?: boolean;
  sysfs?: boolean;
  readOnlyKernelFiles?: boolean;
  uid?: number;
  gid?: number;
  groups?: number[];
  stdio?: [number, number, number];
  pidNamespace?: boolean;
  lingerMs?: number;
}

interface Addon extends GlueAddon {
  createNetns(): number;
  rtnlOpen(nsFd?: number): number;
  linkList(sock: number): NativeLink[];
  linkSet(sock: number, index: number, change: { up?: boolean; mtu?: number; noLinkLocal?: boolean }): void;
  linkDelete(sock: number, index: number): void;
  addrList(sock: number): NativeAddress[];
  addrAdd(sock: number, index: number, address: string, prefixLen: number): void;
  routeList(sock: number): NativeRoute[];
  routeAdd(
    sock: number,
    route: { dst: string; prefixLen: number; oif?: number; gateway?: string; source?: string; metric?: number; table?: number },
  ): void;
  spawn(plan: NativeSpawnPlan, helper: string): { pid: number; pidfd: number };
  waitPidfd(pidfd: number, done: (errno: number | null, code: number | null, signal: number | null) => void): void;
  pidfdSendSignal(pidfd: number, signal: number): void;
  pipe(closeOnExec?: boolean): [number, number];
  execWithInput(file: string, argv: string[], env: string[], input: Uint8Array, extraFds?: number[]): never;
  socketOpen(nsFd: number | null, family: 4 | 6, type: 'tcp' | 'udp', options: NetnsSocketOptions): number;
  socketBind(fd: number, address: string, port: number): void;
  socketListen(fd: number, backlog: number): void;
  socketConnect(fd: number, address: string, port: number): void;
  socketSend(fd: number, data: Uint8Array): boolean;
  recvSocketError(fd: number, buffer: Buffer): (Omit<SocketErrorEntry, 'error'> & { errno: number }) | null;
  socketName(fd: number): { address: string; port: number };
  recvOrigDst(fd: number, buffer: Buffer): OrigDstDatagram | null;
  icmpOpen(nsFd: number | null, family: 4 | 6, options: IcmpSocketOptions): number;
  icmpRecv(fd: number, buffer: Buffer): IcmpMessage | null;
  icmpSend(fd: number, message: Uint8Array, destination: string, source: string | null, ttl: number | null): boolean;
  netlinkMonitorOpen(nsFd: number | null): number;
  netlinkMonitorDrain(fd: number, buffer: Buffer): { datagrams: number; overflowed: boolean };
  unixDgramSend(name: string, data: Uint8Array): void;
  unixDgramBind(name: string): number;
  unixDgramRecv(fd: number, buffer: Buffer): UnixDatagram | null;
  ReadableWatcher: new (fd: number, callback: (errno: number | null) => void) => { stop(): void };
}

// src/ (under tsx) and dist/ are both one level below the package root.
const loaded = loadAddon<Addon>('@wirecage/netns', fileURLToPath(new URL('..', import.meta.url)), NetnsError);

export const native: Addon = loaded.addon;

/**
 * The directory of the addon that was loaded: the wirecage-userns and wirecage-cage executables are
 * built and shipped next to it (build/Release/ or prebuilds/linux-x64/), so they always match it.
 */
export const nativeDir = loaded.dir;
