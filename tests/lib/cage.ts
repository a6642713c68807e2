// Labs for `wirecage run`: a client namespace (the cage's "host", where
// wirecage itself is started) joined by a veth to one or more server
// namespaces, each running wireguard-go as the cage's peer. wirecage is
// always started inside the client namespace, so no cage traffic ever
// touches the machine's own namespace.
import { readFile } from 'node:fs/promises';
import type { ExecOptions, ExecResult } from './exec.js';
import { nsRun, type Lab, type Netns } from './netns.js';
import type { SpawnOptions, LabProcess } from './process.js';
import { waitFor } from './wait.js';
import { generateKeyPair, writeSecretFile, type WgKeyPair } from './wg.js';
import { startWireguardGo, type WireguardGoPeer } from './wireguard-go.js';
import { packageBin } from './package-bin.js';

/** The built CLI (run `npx turbo run build` first). */
export const WIRECAGE_BIN = packageBin('wirecage');

/** One wireguard-go server the cage can reach, with its own tunnel prefixes. */
export interface CageServer {
  ns: Netns;
  wg: WireguardGoPeer;
  /** The server's veth address: the host of the cage's Endpoint. */
  outer: string;
  /** The client namespace's address on the veth to this server (must stay unreachable from the cage). */
  clientOuter: string;
  /** The server's own tunnel addresses and the prefixes behind it. */
  v4: string;
  v6: string;
  net4: string;
  net6: string;
  /** `outer:port` for the cage's config. */
  endpoint: string;
  /** Address `host` (2..254) of this server's prefixes, for a client: [v4, v6]. */
  clientAddress(host: number): { v4: string; v6: string };
}

export interface CageLab {
  lab: Lab;
  /** Where wirecage runs. */
  client: Netns;
  servers: CageServer[];
  /** A 0700 lab temp dir for config files. */
  dir: string;
}

/**
 * A client namespace and `servers` server namespaces. Server k (from 0) owns 10.(77+k).0.0/24 and
 * fd7a:77:<k+1>::/64 and sits at .1 / ::1 of them.
 */
export async function cageLab(lab: Lab, opts: { servers?: number } = {}): Promise<CageLab> {
  const client = await lab.namespace('cli');
  const servers: CageServer[] = [];
  for (let k = 0; k < (opts.servers ?? 1); k++) {
    const ns = await lab.namespace(`srv${k}`);
    const link = await lab.veth(client, ns, { v6: false });
    const net4 = `10.${77 + k}.0`;
    const net6 = `fd7a:77:${k + 1}:`;
    const wg = await startWireguardGo(ns, { addresses: [`${net4}.1/24`, `${net6}:1/64`], mtu: 1420 });
    servers.push({
      ns,
      wg,
      outer: link.b.v4!,
      clientOuter: link.a.v4!,
      v4: `${net4}.1`,
      v6: `${net6}:1`,
      net4: `${net4}.0/24`,
      net6: `${net6}:/64`,
      endpoint: wg.endpoint(link.b.v4!),
      clientAddress: (host) => ({ v4: `${net4}.${host}`, v6: `${net6}:${host.toString(16)}` }),
    });
  }
  return { lab, client, servers, dir: await lab.tempDir() };
}

/** A client key pair whose private key is also held as text, to be written into wg-quick files. */
export interface CageKey extends WgKeyPair {
  privateKey: string;
}

export async function cageKey(dir: string, name: string): Promise<CageKey> {
  const pair = await generateKeyPair(dir, name);
  return { ...pair, privateKey: (await readFile(pair.privateKeyFile, 'utf8')).trim() };
}

/** Registers `key` as a peer of `server` owning the given tunnel addresses (as /32 and /128). */
export async function registerClient(server: CageServer, key: CageKey, addresses: string[], presharedKeyFile?: string): Promise<void> {
  await server.wg.setPeer({
    publicKey: key.publicKey,
    allowedIps: addresses.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)),
    presharedKeyFile,
  });
}

export type WgQuickSection = Record<string, string | number | undefined>;

/** wg-quick text: `[Interface]`, then one `[Peer]` per entry; undefined values are left out. */
export function wgQuickText(iface: WgQuickSection, peers: WgQuickSection[]): string {
  const section = (name: string, s: WgQuickSection) =>
    [`[${name}]`, ...Object.entries(s).flatMap(([k, v]) => (v === undefined ? [] : [`${k} = ${v}`]))].join('\n');
  return [section('Interface', iface), ...peers.map((p) => section('Peer', p))].join('\n\n') + '\n';
}

/** Writes a wg-quick file with mode 0600 (it holds a private key) and returns its path. */
export function writeWgQuick(dir: string, name: string, iface: WgQuickSection, peers: WgQuickSection[]): Promise<string> {
  return writeSecretFile(dir, name, wgQuickText(iface, peers));
}

/** `[Peer]` section for a server, routing its prefixes (v6 too when `v6`). */
export function serverPeer(server: CageServer, opts: { v6?: boolean; presharedKey?: string } = {}): WgQuickSection {
  return {
    PublicKey: server.wg.publicKey,
    PresharedKey: opts.presharedKey,
    Endpoint: server.endpoint,
    AllowedIPs: opts.v6 ? `${server.net4}, ${server.net6}` : server.net4,
  };
}

/** A client of a CageServer: its key, tunnel address and wg-quick file. */
export interface CageClient {
  key: CageKey;
  /** Its IPv4 tunnel address (no IPv6: the cage gets no IPv6 route at all). */
  v4: string;
  conf: string;
}

/** A fresh key `name` that `server` knows as its client .2, and `<name>.conf` for it in `dir`, with the server as DNS. */
export async function cageClient(server: CageServer, dir: string, name: string): Promise<CageClient> {
  const key = await cageKey(dir, name);
  const { v4 } = server.clientAddress(2);
  await registerClient(server, key, [v4]);
  const conf = await writeWgQuick(dir, `${name}.conf`, { PrivateKey: key.privateKey, Address: `${v4}/32`, DNS: server.v4 }, [
    serverPeer(server),
  ]);
  return { key, v4, conf };
}

/** `wirecage run ARGS...` inside `ns`; never rejects on exit status. */
export function wirecage(ns: Netns, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  return nsRun(ns, process.execPath, [WIRECAGE_BIN, 'run', ...args], { timeoutMs: 30_000, ...opts });
}

/** `wirecage run ARGS...` as a long-running lab process in `ns` (its pid is wirecage's own). */
export function spawnWirecage(ns: Netns, args: readonly string[], opts?: SpawnOptions): LabProcess {
  return ns.spawn(process.execPath, [WIRECAGE_BIN, 'run', ...args], opts);
}

/**
 * Starts a node fixture script in `ns` and waits for its first output line (the fixtures print one
 * line once they listen).
 */
export async function startFixture(ns: Netns, script: string, args: readonly string[]): Promise<LabProcess> {
  const proc = ns.spawn(process.execPath, [script, ...args]);
  await waitFor(
    () => {
      proc.assertRunning();
      return proc.output().includes('\n');
    },
    { what: `${script} to listen in ${ns.name}`, describe: () => proc.describe() },
  );
  return proc;
}
