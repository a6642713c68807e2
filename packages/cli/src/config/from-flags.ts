// The earlier wirecage's tunnel flags (--wg-public-key, --wg-private-key-file,
// --wg-endpoint, --wg-address, and --wg-psk-file) as the config a wg-quick
// file would give: one peer routing everything, 0.0.0.0/0 plus ::/0 when an
// IPv6 address is given. `run` builds the WgQuickConfig from them, `config
// from-flags` writes the same thing as a file; both start from TunnelFlags,
// and a test checks that the file parses back to the same config.
//
// The private key is only ever read from its file (0600 or stricter), and the
// file written names that file instead of copying the key.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { formatCidr, formatHostPort, formatIp, keyToBase64, parseCidr, parseKeyBase64, type Cidr } from '@wirecage/wg-engine/config';
import { KeyFileError, readKeyByFile } from './key-by-file.js';
import { parseEndpoint, scrubKeys, type WgQuickConfig } from './wg-quick.js';
import { WirecageError } from '../errors.js';

/** A bad tunnel flag; the message starts with the flag's name. */
export class FlagError extends WirecageError {
  override name = 'FlagError';
  constructor(flag: string, reason: string) {
    super(scrubKeys(`${flag}: ${reason}`));
  }
}

// oclif adds "FLAGS" to the heading.
const GROUP = 'EARLIER WIRECAGE';

/** The oclif definitions, shared by `run` and `config from-flags`. */
export const tunnelFlagDefs = {
  'wg-public-key': Flags.string({ summary: 'Public key of the one peer (the server), base64.', helpValue: 'KEY', helpGroup: GROUP }),
  'wg-private-key-file': Flags.string({
    summary: "File holding this end's base64 private key, 0600 or stricter (the key is never taken from argv or the environment).",
    helpValue: 'FILE',
    helpGroup: GROUP,
  }),
  'wg-endpoint': Flags.string({
    summary: "The peer's address: host:port, IPv4:port or [IPv6]:port.",
    helpValue: 'HOST:PORT',
    helpGroup: GROUP,
  }),
  'wg-address': Flags.string({
    summary: "This end's tunnel address, IPv4 or IPv6, bare or with /len (repeatable); an IPv6 one also routes ::/0 through the tunnel.",
    helpValue: 'IP[/LEN]',
    multiple: true,
    helpGroup: GROUP,
  }),
  'wg-psk-file': Flags.string({ summary: 'File holding the base64 preshared key, 0600 or stricter.', helpValue: 'FILE', helpGroup: GROUP }),
};

export type TunnelFlagValues = { [K in keyof typeof tunnelFlagDefs]?: K extends 'wg-address' ? string[] : string } & {
  dns?: string[];
  'dns-override'?: boolean;
};

/** The flags, checked; key files are named (absolute), not yet read. */
export interface TunnelFlags {
  publicKey: Buffer;
  privateKeyFile: string;
  presharedKeyFile?: string;
  endpoint: { host: string; port: number };
  addresses: Cidr[];
  dns: string[];
  /** The server chosen for the user when no --dns was given, as the earlier wirecage did; null otherwise. */
  defaultDns: string | null;
  /** --no-dns-override: no DNS at all, the cage keeps the host's resolvers. */
  keepHostDns: boolean;
}

/** The earlier wirecage's resolver; an IPv6-only tunnel gets the same service's IPv6 address. */
export const DEFAULT_DNS = { 4: '1.1.1.1', 6: '2606:4700:4700::1111' } as const;

const REQUIRED = ['wg-public-key', 'wg-private-key-file', 'wg-endpoint', 'wg-address'] as const;

/** True when any tunnel flag is given: the tunnel then comes from the flags. */
export function hasTunnelFlags(flags: TunnelFlagValues): boolean {
  return Object.keys(tunnelFlagDefs).some((f) => flags[f as keyof typeof tunnelFlagDefs] !== undefined);
}

export function parseTunnelFlags(flags: TunnelFlagValues): TunnelFlags {
  for (const f of REQUIRED) {
    if (flags[f] === undefined)
      throw new FlagError(`--${f}`, `missing; a tunnel from flags needs ${REQUIRED.map((r) => `--${r}`).join(', ')}`);
  }
  let publicKey: Buffer;
  try {
    publicKey = parseKeyBase64(flags['wg-public-key']!);
  } catch {
    throw new FlagError('--wg-public-key', 'not a WireGuard key (44 base64 characters, as `wg pubkey` prints)');
  }
  const endpointText = flags['wg-endpoint']!;
  const endpoint = parseEndpoint(endpointText);
  if (!endpoint) throw new FlagError(`--wg-endpoint ${endpointText}`, 'not host:port, IPv4:port or [IPv6]:port with a port in 1-65535');
  const addresses = flags['wg-address']!.map((a) => {
    if (a.includes(',')) throw new FlagError(`--wg-address ${a}`, 'one address per flag; repeat --wg-address for more');
    try {
      // As in a wg-quick file, the host part of an interface address is kept.
      return parseCidr(a, { keepHostBits: true });
    } catch {
      throw new FlagError(`--wg-address ${a}`, 'not an IPv4 or IPv6 address with an optional /len');
    }
  });
  for (const d of flags.dns ?? []) if (!isIP(d)) throw new FlagError(`--dns ${d}`, 'not an IP address');
  const keepHostDns = flags['dns-override'] === false;
  let dns = flags.dns ?? [];
  let defaultDns: string | null = null;
  if (dns.length === 0 && !keepHostDns) {
    defaultDns = DEFAULT_DNS[addresses.some((a) => a.family === 4) ? 4 : 6];
    dns = [defaultDns];
  }
  return {
    publicKey,
    privateKeyFile: resolve(flags['wg-private-key-file']!),
    presharedKeyFile: flags['wg-psk-file'] === undefined ? undefined : resolve(flags['wg-psk-file']),
    endpoint,
    addresses,
    dns,
    defaultDns,
    keepHostDns,
  };
}

function allowedIps(t: TunnelFlags): Cidr[] {
  const all = [parseCidr('0.0.0.0/0')];
  if (t.addresses.some((a) => a.family === 6)) all.push(parseCidr('::/0'));
  return all;
}

/** What a wg-quick file would give; reads the key files. `file` names the config in later messages. */
export function tunnelConfig(t: TunnelFlags, file = 'the --wg-* flags'): WgQuickConfig {
  const read = (flag: string, path: string, what: 'private key' | 'preshared key') => {
    try {
      return readKeyByFile(path, what);
    } catch (err) {
      if (err instanceof KeyFileError) throw new FlagError(flag, err.message);
      throw err;
    }
  };
  const privateKey = read('--wg-private-key-file', t.privateKeyFile, 'private key');
  const psk =
    t.presharedKeyFile === undefined
      ? {}
      : { presharedKey: read('--wg-psk-file', t.presharedKeyFile, 'preshared key'), presharedKeyFile: t.presharedKeyFile };
  return {
    file,
    interface: {
      privateKey,
      privateKeyFile: t.privateKeyFile,
      addresses: t.addresses,
      dns: { servers: t.dns, search: [] },
      mtu: undefined,
      listenPort: undefined,
    },
    peers: [{ publicKey: t.publicKey, ...psk, endpoint: t.endpoint, allowedIps: allowedIps(t), line: 0 }],
  };
}

/**
 * `run` resolves the endpoint again when the cage starts; this earlier lookup only makes a name
 * that does not resolve an error about --wg-endpoint rather than about a config file's line.
 */
export async function checkEndpointResolves(t: TunnelFlags): Promise<void> {
  if (isIP(t.endpoint.host)) return;
  try {
    await lookup(t.endpoint.host);
  } catch {
    throw new FlagError(`--wg-endpoint ${formatHostPort(t.endpoint)}`, `cannot resolve "${t.endpoint.host}"`);
  }
}

/** The same config as wg-quick text, keys by reference (PrivateKeyFile, PresharedKeyFile: wirecage extensions). */
export function tunnelConfigText(t: TunnelFlags): string {
  // The parser trims values and cuts comments at #: a path it would read differently cannot be written.
  const path = (flag: string, p: string) => {
    if (/[#\r\n]/.test(p) || p !== p.trim())
      throw new FlagError(
        flag,
        `"${p}" cannot be written to a config file (it has a #, a line break or spaces at an end); rename the file`,
      );
    return p;
  };
  const lines = [
    '# Written by `wirecage config from-flags`. PrivateKeyFile and PresharedKeyFile are wirecage',
    '# extensions that wg-quick does not know: wirecage reads the key from that file (0600).',
    '[Interface]',
    `# PrivateKey: read from ${t.privateKeyFile}`,
    `PrivateKeyFile = ${path('--wg-private-key-file', t.privateKeyFile)}`,
    `Address = ${t.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`).join(', ')}`,
  ];
  if (t.defaultDns) lines.push(`# No --dns was given: ${t.defaultDns} through the tunnel, as the earlier wirecage did.`);
  if (t.dns.length) lines.push(`DNS = ${t.dns.join(', ')}`);
  lines.push('', '[Peer]', `PublicKey = ${keyToBase64(t.publicKey)}`);
  if (t.presharedKeyFile !== undefined) {
    lines.push(`# PresharedKey: read from ${t.presharedKeyFile}`, `PresharedKeyFile = ${path('--wg-psk-file', t.presharedKeyFile)}`);
  }
  lines.push(`Endpoint = ${formatHostPort(t.endpoint)}`, `AllowedIPs = ${allowedIps(t).map(formatCidr).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** The flags of `wirecage config from-flags` that write this tunnel's file (for the hint `run` prints). */
export function tunnelFlagsArgv(t: TunnelFlags, given: TunnelFlagValues): string[] {
  const argv = [
    '--wg-public-key',
    keyToBase64(t.publicKey),
    '--wg-private-key-file',
    t.privateKeyFile,
    '--wg-endpoint',
    formatHostPort(t.endpoint),
  ];
  for (const a of given['wg-address'] ?? []) argv.push('--wg-address', a);
  if (t.presharedKeyFile !== undefined) argv.push('--wg-psk-file', t.presharedKeyFile);
  for (const d of given.dns ?? []) argv.push('--dns', d);
  if (t.keepHostDns) argv.push('--no-dns-override');
  return argv;
}
