// The keys a wg-quick file may hold, one handler each, per section: what
// parseWgQuick accepts is exactly what these tables list.
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import {
  isHostName,
  parseCidr,
  parseHostPort,
  parseKeyBase64,
  type Cidr,
  type HostPort,
  type ParseCidrOptions,
} from '@wirecage/wg-engine/config';
import { KeyFileError, readKeyByFile } from './key-by-file.js';
import type { PeerConfigFile } from './wg-quick.js';

/** One Key = Value line, as its handler sees it. */
export interface KeyLine {
  file: string;
  lineNo: number;
  value: string;
  /** Lowercased key name: PrivateKey and PrivateKeyFile share a handler. */
  k: string;
  fail(reason: string): never;
}

export interface InterfaceDraft {
  privateKey?: Buffer;
  privateKeyFile?: string;
  privateKeyLine: number;
  addresses: Cidr[];
  dns: { servers: string[]; search: string[] };
  mtu?: number;
  mtuLine: number;
  listenPort?: number;
  reresolveAfter?: number;
  linger?: number;
}

export type PeerDraft = Partial<PeerConfigFile> & { allowedIps: Cidr[]; line: number };

export interface KeyHandler<Draft> {
  /** As users write it, for the list of known keys. */
  name: string;
  /** May appear once per section: a second one is almost always a merge mistake, and silently keeping either value would hide it. */
  once: boolean;
  apply(draft: Draft, line: KeyLine): void;
}

const privateKey = (draft: InterfaceDraft, line: KeyLine): void => {
  if (draft.privateKeyLine)
    line.fail(`the private key is already given on line ${draft.privateKeyLine}; keep PrivateKey or PrivateKeyFile, not both`);
  draft.privateKeyLine = line.lineNo;
  if (line.k === 'privatekeyfile') ({ path: draft.privateKeyFile, key: draft.privateKey } = keyFile(line, 'private key'));
  else draft.privateKey = keyOr(line.value, () => line.fail('not a WireGuard key (44 base64 characters, as `wirecage keygen` prints)'));
};

export const INTERFACE_KEYS: Record<string, KeyHandler<InterfaceDraft>> = {
  privatekey: { name: 'PrivateKey', once: true, apply: privateKey },
  privatekeyfile: { name: 'PrivateKeyFile', once: true, apply: privateKey },
  address: {
    name: 'Address',
    once: false,
    apply(draft, line) {
      for (const a of list(line.value)) {
        // wg-quick keeps the host part of an interface address.
        draft.addresses.push(
          cidrOr(a, () => line.fail(`"${a}" is not an IPv4 or IPv6 address with an optional /prefix`), { keepHostBits: true }),
        );
      }
    },
  },
  dns: {
    name: 'DNS',
    once: false,
    apply(draft, line) {
      // As wg-quick: an IP address is a server, anything else a search domain.
      for (const d of list(line.value)) {
        if (isIP(d)) draft.dns.servers.push(d);
        else if (isHostName(d)) draft.dns.search.push(d.replace(/\.$/, ''));
        else line.fail(`"${d}" is neither an IP address nor a search domain`);
      }
    },
  },
  mtu: {
    name: 'MTU',
    once: true,
    apply(draft, line) {
      draft.mtu = intIn(line.value, 576, 65535) ?? line.fail(`"${line.value}" is not an MTU (576-65535)`);
      draft.mtuLine = line.lineNo;
    },
  },
  listenport: {
    name: 'ListenPort',
    once: true,
    apply(draft, line) {
      draft.listenPort = intIn(line.value, 0, 65535) ?? line.fail(`"${line.value}" is not a port (0-65535)`);
    },
  },
  // wirecage's own, like PrivateKeyFile (wg-quick would refuse it): --reresolve-after for this file.
  reresolveafter: {
    name: 'ReresolveAfter',
    once: true,
    apply(draft, line) {
      draft.reresolveAfter = intIn(line.value, 0, 86400) ?? line.fail(`"${line.value}" is not a number of seconds (0-86400; 0: never)`);
    },
  },
  // wirecage's own too: --linger for this file.
  linger: {
    name: 'Linger',
    once: true,
    apply(draft, line) {
      draft.linger = intIn(line.value, 0, 3600) ?? line.fail(`"${line.value}" is not a number of seconds (0-3600; 0: no wait)`);
    },
  },
};

const presharedKey = (peer: PeerDraft, line: KeyLine): void => {
  if (peer.presharedKey) line.fail('the preshared key is already given in this [Peer]; keep PresharedKey or PresharedKeyFile, not both');
  if (line.k === 'presharedkeyfile') ({ path: peer.presharedKeyFile, key: peer.presharedKey } = keyFile(line, 'preshared key'));
  else peer.presharedKey = keyOr(line.value, () => line.fail('not a WireGuard key (44 base64 characters, as `wg genpsk` prints)'));
};

export const PEER_KEYS: Record<string, KeyHandler<PeerDraft>> = {
  publickey: {
    name: 'PublicKey',
    once: true,
    apply(peer, line) {
      peer.publicKey = keyOr(line.value, () => line.fail('not a WireGuard key (44 base64 characters, as `wirecage pubkey` prints)'));
    },
  },
  presharedkey: { name: 'PresharedKey', once: true, apply: presharedKey },
  presharedkeyfile: { name: 'PresharedKeyFile', once: true, apply: presharedKey },
  endpoint: {
    name: 'Endpoint',
    once: true,
    apply(peer, line) {
      peer.endpoint =
        parseEndpoint(line.value) ?? line.fail(`"${line.value}" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535`);
    },
  },
  allowedips: {
    name: 'AllowedIPs',
    once: false,
    apply(peer, line) {
      for (const a of list(line.value)) peer.allowedIps.push(cidrOr(a, () => line.fail(`"${a}" is not an IPv4 or IPv6 prefix`)));
    },
  },
  persistentkeepalive: {
    name: 'PersistentKeepalive',
    once: true,
    apply(peer, line) {
      const { value } = line;
      peer.persistentKeepalive =
        (value.toLowerCase() === 'off' ? 0 : intIn(value, 0, 65535)) ??
        line.fail(`"${value}" is not a number of seconds (0-65535) or "off"`);
    },
  },
};

/** A peer's Endpoint: an address or a DNS name (resolved when the cage starts), IPv6 in brackets; null if it is not one. */
export function parseEndpoint(value: string): HostPort | null {
  try {
    return parseHostPort(value, { names: true });
  } catch {
    return null;
  }
}

// Relative to the config file, so the file works from any working directory.
function keyFile(line: KeyLine, what: 'private key' | 'preshared key'): { path: string; key: Buffer } {
  const path = resolve(dirname(line.file), line.value);
  try {
    return { path, key: readKeyByFile(path, what) };
  } catch (err) {
    if (err instanceof KeyFileError) return line.fail(err.message);
    throw err;
  }
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function intIn(value: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(value)) return null;
  const n = Number(value);
  return n >= min && n <= max ? n : null;
}

function keyOr(value: string, fail: () => never): Buffer {
  try {
    return parseKeyBase64(value, 'key');
  } catch {
    return fail();
  }
}

function cidrOr(value: string, fail: () => never, opts?: ParseCidrOptions): Cidr {
  try {
    return parseCidr(value, opts);
  } catch {
    return fail();
  }
}
