import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertIfname, type Netns } from './netns.js';
import type { LabProcess } from './process.js';
import { waitFor } from './wait.js';
import {
  formatEndpoint,
  generateKeyPair,
  latestHandshake,
  nsWgSet,
  removePeer,
  setPeer,
  wgShow,
  wgShowDump,
  type WgDump,
  type WgKeyPair,
  type WgPeerConfig,
} from './wg.js';

export * from './wg.js';

/** wireguard-go puts its UAPI socket here, outside any netns: interface names must be unique machine-wide. */
export const WG_RUN_DIR = '/var/run/wireguard';

export function uapiSocketPath(ifname: string): string {
  return join(WG_RUN_DIR, `${ifname}.sock`);
}

export interface WireguardGoOptions {
  /** Default: lab.uniqueIfname('wg'). Must be unique on the machine. */
  ifname?: string;
  /** Default: whatever port wireguard-go picked (read back into `listenPort`). */
  listenPort?: number;
  /** Tunnel addresses as CIDRs, v4 and/or v6 (v6 added with nodad). */
  addresses?: string[];
  mtu?: number;
  peers?: WgPeerConfig[];
  /** Default: a fresh pair in a lab temp dir. */
  keys?: WgKeyPair;
  /** wireguard-go LOG_LEVEL; default 'error'. */
  logLevel?: 'verbose' | 'error' | 'silent';
  /** Bound on waiting for the UAPI socket. Default 10 s. */
  startTimeoutMs?: number;
}

/** A running wireguard-go interface inside a lab namespace, stopped by the lab's teardown. */
export class WireguardGoPeer {
  constructor(
    readonly ns: Netns,
    readonly ifname: string,
    readonly keys: WgKeyPair,
    readonly listenPort: number,
    readonly process: LabProcess,
  ) {}

  get publicKey(): string {
    return this.keys.publicKey;
  }

  get socketPath(): string {
    return uapiSocketPath(this.ifname);
  }

  /** `host:<listenPort>` for another peer's `endpoint`. */
  endpoint(host: string): string {
    return formatEndpoint(host, this.listenPort);
  }

  show(): Promise<string> {
    return wgShow(this.ns, this.ifname);
  }

  dump(): Promise<WgDump> {
    return wgShowDump(this.ns, this.ifname);
  }

  setPeer(peer: WgPeerConfig): Promise<void> {
    return setPeer(this.ns, this.ifname, peer);
  }

  removePeer(publicKey: string): Promise<void> {
    return removePeer(this.ns, this.ifname, publicKey);
  }

  latestHandshake(publicKey: string): Promise<Date | null> {
    return latestHandshake(this.ns, this.ifname, publicKey);
  }

  /** Stops the daemon now (teardown would do it later); its socket and interface go with it. */
  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.socketPath, { force: true });
  }
}

/**
 * Starts `wireguard-go -f <ifname>` in `ns`, waits for its UAPI socket, then configures it with `wg set`
 * (keys from files), adds tunnel addresses and brings the link up.
 */
export async function startWireguardGo(ns: Netns, opts: WireguardGoOptions = {}): Promise<WireguardGoPeer> {
  const lab = ns.lab;
  const ifname = opts.ifname ?? lab.uniqueIfname('wg');
  assertIfname(ifname);
  const sock = uapiSocketPath(ifname);
  if (existsSync(sock)) {
    throw new Error(`${sock} already exists: another wireguard-go owns interface name ${ifname}; pick another name`);
  }
  const keys = opts.keys ?? (await generateKeyPair(await lab.tempDir(), ifname));

  // A SIGKILLed wireguard-go leaves its socket behind; the name carries the lab token, so it is ours.
  lab.onTeardown(() => rm(sock, { force: true }));
  const proc = ns.spawn(wireguardGoBinary(), ['-f', ifname], {
    env: { PATH: process.env.PATH, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: opts.logLevel ?? 'error' },
  });
  await waitFor(
    () => {
      proc.assertRunning();
      return existsSync(sock);
    },
    { what: `wireguard-go UAPI socket ${sock} in ${ns.name}`, timeoutMs: opts.startTimeoutMs ?? 10_000, describe: () => proc.describe() },
  );

  const setArgs = ['private-key', keys.privateKeyFile];
  if (opts.listenPort !== undefined) setArgs.push('listen-port', String(opts.listenPort));
  await nsWgSet(ns, ifname, setArgs);
  for (const peer of opts.peers ?? []) await setPeer(ns, ifname, peer);
  for (const cidr of opts.addresses ?? []) await ns.addAddress(ifname, cidr);
  await ns.linkUp(ifname, opts.mtu);

  const dump = await wgShowDump(ns, ifname);
  if (dump.interface.publicKey !== keys.publicKey) {
    throw new Error(`${ifname} in ${ns.name} reports public key ${dump.interface.publicKey}, expected ${keys.publicKey}`);
  }
  return new WireguardGoPeer(ns, ifname, keys, dump.interface.listenPort, proc);
}

/** The wireguard-go the labs run: $WIREGUARD_GO (a path, e.g. a newer build to compare against), else the one on PATH. */
export function wireguardGoBinary(): string {
  return process.env.WIREGUARD_GO || 'wireguard-go';
}
