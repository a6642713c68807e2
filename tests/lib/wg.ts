// The `wg` CLI as a typed API: keys, `wg show ... dump` parsing, peer changes. Key material moves only
// through stdin/stdout and 0600 files, never argv, env or error messages.
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOrThrow } from './exec.js';
import { nsRunOrThrow, type NsRef } from './netns.js';

/** Writes `content` to `dir/name` with mode 0600, atomically (temp file + rename). */
export async function writeSecretFile(dir: string, name: string, content: string): Promise<string> {
  const final = join(dir, name);
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return final;
}

export interface WgKeyPair {
  /** 0600 file holding the base64 private key, for `wg set ... private-key <file>`. */
  privateKeyFile: string;
  publicKey: string;
}

/** `wg genkey` into `dir/<name>.key`, `wg pubkey` via stdin. */
export async function generateKeyPair(dir: string, name = 'private'): Promise<WgKeyPair> {
  const priv = (await runOrThrow('wg', ['genkey'])).stdout.trim();
  const privateKeyFile = await writeSecretFile(dir, `${name}.key`, `${priv}\n`);
  const pub = await run('wg', ['pubkey'], { input: `${priv}\n` });
  if (pub.code !== 0) throw new Error(`wg pubkey failed (exit ${pub.code}): ${pub.stderr.trim()}`);
  return { privateKeyFile, publicKey: pub.stdout.trim() };
}

/** `wg genpsk` into a 0600 file; returns its path for `preshared-key <file>`. */
export async function generatePresharedKey(dir: string, name = 'preshared'): Promise<string> {
  const psk = (await runOrThrow('wg', ['genpsk'])).stdout.trim();
  return writeSecretFile(dir, `${name}.psk`, `${psk}\n`);
}

/** `host:port`, with brackets for IPv6 hosts. */
export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface WgPeerConfig {
  publicKey: string;
  /** `host:port` (IPv6 in brackets); see formatEndpoint. */
  endpoint?: string;
  /** Replaces the peer's allowed IPs; `[]` clears them. */
  allowedIps?: string[];
  /** Seconds; 0 turns it off. */
  persistentKeepalive?: number;
  /** Path of a 0600 file with the key; the literal `/dev/null` removes it. */
  presharedKeyFile?: string;
}

export interface WgInterfaceStatus {
  publicKey: string;
  listenPort: number;
  fwmark: number | null;
}

export interface WgPeerStatus {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string[];
  /** Null if no handshake has completed yet. */
  latestHandshake: Date | null;
  rxBytes: number;
  txBytes: number;
  /** Seconds, null when off. */
  persistentKeepalive: number | null;
}

export interface WgDump {
  interface: WgInterfaceStatus;
  peers: WgPeerStatus[];
}

const none = (s: string): string | null => (s === '(none)' ? null : s);
const offOr = (s: string): number | null => (s === 'off' ? null : toInt(s));

function toInt(s: string): number {
  if (!/^\d+$/.test(s)) throw new Error(`wg dump: expected a number, got ${JSON.stringify(s)}`);
  return Number(s);
}

/**
 * Parses `wg show <if> dump`. The interface's private key (first field) is dropped so that no
 * assertion diff or log can show it.
 */
export function parseWgDump(text: string): WgDump {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.length === 0) throw new Error('wg dump: empty output');
  const head = lines[0]!.split('\t');
  if (head.length !== 4) throw new Error(`wg dump: interface line has ${head.length} fields, expected 4`);
  const iface = head as [string, string, string, string];
  const peers = lines.slice(1).map((line, i) => {
    const fields = line.split('\t');
    if (fields.length !== 8) throw new Error(`wg dump: peer line ${i + 1} has ${fields.length} fields, expected 8`);
    const f = fields as [string, string, string, string, string, string, string, string];
    const handshake = toInt(f[4]);
    return {
      publicKey: f[0],
      presharedKey: none(f[1]),
      endpoint: none(f[2]),
      allowedIps: f[3] === '(none)' ? [] : f[3].split(','),
      latestHandshake: handshake === 0 ? null : new Date(handshake * 1000),
      rxBytes: toInt(f[5]),
      txBytes: toInt(f[6]),
      persistentKeepalive: offOr(f[7]),
    };
  });
  return { interface: { publicKey: iface[1], listenPort: toInt(iface[2]), fwmark: offOr(iface[3]) }, peers };
}

/** Human-readable `wg show <if>` (private keys are shown as hidden by wg itself). */
export async function wgShow(ns: NsRef, ifname: string): Promise<string> {
  return (await nsRunOrThrow(ns, 'wg', ['show', ifname])).stdout;
}

export async function wgShowDump(ns: NsRef, ifname: string): Promise<WgDump> {
  return parseWgDump((await nsRunOrThrow(ns, 'wg', ['show', ifname, 'dump'])).stdout);
}

export async function findPeer(ns: NsRef, ifname: string, publicKey: string): Promise<WgPeerStatus | undefined> {
  return (await wgShowDump(ns, ifname)).peers.find((p) => p.publicKey === publicKey);
}

/** Time of the last completed handshake with the peer; null if none. Throws if the peer is unknown. */
export async function latestHandshake(ns: NsRef, ifname: string, publicKey: string): Promise<Date | null> {
  const peer = await findPeer(ns, ifname, publicKey);
  if (peer === undefined) throw new Error(`${ifname} in ${typeof ns === 'string' ? ns : ns.name} has no peer ${publicKey}`);
  return peer.latestHandshake;
}

export function peerArgs(peer: WgPeerConfig): string[] {
  const args = ['peer', peer.publicKey];
  if (peer.presharedKeyFile !== undefined) args.push('preshared-key', peer.presharedKeyFile);
  if (peer.endpoint !== undefined) args.push('endpoint', peer.endpoint);
  if (peer.persistentKeepalive !== undefined) args.push('persistent-keepalive', String(peer.persistentKeepalive));
  if (peer.allowedIps !== undefined) args.push('allowed-ips', peer.allowedIps.join(','));
  return args;
}

/** `wg set <if> <args...>`; args must name key files, never keys. */
export async function nsWgSet(ns: NsRef, ifname: string, args: readonly string[]): Promise<void> {
  await nsRunOrThrow(ns, 'wg', ['set', ifname, ...args]);
}

/** Adds or updates a peer (`wg set <if> peer ...`). */
export async function setPeer(ns: NsRef, ifname: string, peer: WgPeerConfig): Promise<void> {
  await nsWgSet(ns, ifname, peerArgs(peer));
}

export async function removePeer(ns: NsRef, ifname: string, publicKey: string): Promise<void> {
  await nsWgSet(ns, ifname, ['peer', publicKey, 'remove']);
}
