// wg-quick configuration files, as users get them from any WireGuard server.
// Everything wirecage can honour inside a cage is accepted; what would run
// shell hooks or touch the host's routing is refused by name. Every error
// names the file, the line and the key, and never repeats a key's value.
//
// One wirecage extension: PrivateKeyFile = PATH (and PresharedKeyFile) reads
// the key from a 0600 file instead of holding it, so a config written from
// the earlier wirecage's --wg-private-key-file never copies the key. wg-quick
// itself does not know these keys.
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { isHostName, parseCidr, parseHostPort, parseKeyBase64, type Cidr, type HostPort, type ParseCidrOptions } from '@wirecage/wg-engine';
import { KeyFileError, readKeyByFile } from './key-by-file.js';
import { WirecageError } from '../errors.js';

export class ConfigError extends WirecageError {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly key: string | null,
    reason: string,
  ) {
    super(`${file}:${line}: ${scrubKeys(`${key ? `${key}: ` : ''}${reason}`)}`);
  }
}

// Messages quote bad values to say what was wrong; a private key pasted under
// the wrong key (DNS = <key>) must still never reach a terminal or a log.
const KEY_SHAPED = /[A-Za-z0-9+/]{32,}={0,2}/g;
export function scrubKeys(text: string): string {
  return text.replace(KEY_SHAPED, '<key hidden>');
}

export interface PeerConfigFile {
  publicKey: Buffer;
  presharedKey?: Buffer;
  /** Absolute path the preshared key was read from (PresharedKeyFile). */
  presharedKeyFile?: string;
  endpoint?: { host: string; port: number };
  allowedIps: Cidr[];
  persistentKeepalive?: number;
  line: number;
}

export interface WgQuickConfig {
  file: string;
  interface: {
    privateKey: Buffer;
    /** Absolute path the private key was read from (PrivateKeyFile); hidden in the cage like the file. */
    privateKeyFile?: string;
    addresses: Cidr[];
    dns: { servers: string[]; search: string[] };
    mtu?: number;
    listenPort?: number;
  };
  peers: PeerConfigFile[];
}

const REFUSED: Record<string, string> = {
  preup: 'wirecage never runs shell hooks; remove PreUp',
  postup: 'wirecage never runs shell hooks; remove PostUp',
  predown: 'wirecage never runs shell hooks; remove PreDown',
  postdown: 'wirecage never runs shell hooks; remove PostDown',
  table: 'the cage has its own routing table; remove Table',
  saveconfig: 'wirecage never writes the configuration back; remove SaveConfig',
  fwmark: 'the cage has its own network namespace, so FwMark has no use; remove it',
};

const INTERFACE_KEYS = new Set(['privatekey', 'privatekeyfile', 'address', 'dns', 'mtu', 'listenport']);
const PEER_KEYS = new Set(['publickey', 'presharedkey', 'presharedkeyfile', 'endpoint', 'allowedips', 'persistentkeepalive']);

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A peer's Endpoint: an address or a DNS name (resolved when the cage starts), IPv6 in brackets; null if it is not one. */
export function parseEndpoint(value: string): HostPort | null {
  try {
    return parseHostPort(value, { names: true });
  } catch {
    return null;
  }
}

function intIn(value: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(value)) return null;
  const n = Number(value);
  return n >= min && n <= max ? n : null;
}

// Keys that may appear once per section; a second one is almost always a
// merge mistake, and silently keeping either value would hide it.
const SINGLE = new Set(['privatekey', 'privatekeyfile', 'mtu', 'listenport', 'publickey', 'presharedkey', 'presharedkeyfile', 'endpoint', 'persistentkeepalive']);

type PeerDraft = Partial<PeerConfigFile> & { allowedIps: Cidr[]; line: number };

export function parseWgQuick(text: string, file: string): WgQuickConfig {
  let section: 'interface' | 'peer' | null = null;
  let interfaceLine = 0;
  let seen = new Map<string, number>();
  let privateKey: Buffer | undefined;
  let privateKeyFile: string | undefined;
  let privateKeyLine = 0;
  const addresses: Cidr[] = [];
  const dns = { servers: [] as string[], search: [] as string[] };
  let mtu: number | undefined;
  let mtuLine = 0;
  let listenPort: number | undefined;
  const peers: PeerDraft[] = [];

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/#.*$/, '').trim();
    if (raw === '') continue;
    const sectionMatch = /^\[\s*(\w+)\s*\]$/.exec(raw);
    if (sectionMatch) {
      const name = sectionMatch[1]!.toLowerCase();
      if (name === 'interface') {
        if (interfaceLine) throw new ConfigError(file, lineNo, null, `a second [Interface] section (the first is on line ${interfaceLine}); a file describes one interface`);
        interfaceLine = lineNo;
        section = 'interface';
      } else if (name === 'peer') {
        section = 'peer';
        peers.push({ allowedIps: [], line: lineNo });
      } else {
        throw new ConfigError(file, lineNo, null, `unknown section [${sectionMatch[1]}]; expected [Interface] or [Peer]`);
      }
      seen = new Map();
      continue;
    }
    // The line is not quoted back: it may be a private key without its "PrivateKey =",
    // whose own trailing "=" would otherwise pass for the separator (hence also
    // the length limit: no key name is longer than 31 characters, every key is 43).
    const kv = /^([A-Za-z][A-Za-z0-9]{0,30})\s*=(.*)$/.exec(raw);
    if (!kv) throw new ConfigError(file, lineNo, null, 'expected "Key = Value" or a [Section] header');
    const key = kv[1]!;
    const value = kv[2]!.trim();
    const k = key.toLowerCase();
    if (!section) throw new ConfigError(file, lineNo, key, 'appears before any [Interface] or [Peer] section');
    if (REFUSED[k]) throw new ConfigError(file, lineNo, key, REFUSED[k]!);
    const known = section === 'interface' ? INTERFACE_KEYS : PEER_KEYS;
    if (!known.has(k)) {
      const names =
        section === 'interface'
          ? 'PrivateKey, PrivateKeyFile, Address, DNS, MTU, ListenPort'
          : 'PublicKey, PresharedKey, PresharedKeyFile, Endpoint, AllowedIPs, PersistentKeepalive';
      throw new ConfigError(file, lineNo, key, `unknown key in [${section === 'interface' ? 'Interface' : 'Peer'}] (known: ${names})`);
    }
    if (value === '') throw new ConfigError(file, lineNo, key, 'has no value');
    if (SINGLE.has(k)) {
      const first = seen.get(k);
      if (first) throw new ConfigError(file, lineNo, key, `given twice in this section (first on line ${first})`);
      seen.set(k, lineNo);
    }
    const fail = (reason: string): never => {
      throw new ConfigError(file, lineNo, key, reason);
    };
    // Relative to the config file, so the file works from any working directory.
    const keyFile = (what: 'private key' | 'preshared key'): { path: string; key: Buffer } => {
      const path = resolve(dirname(file), value);
      try {
        return { path, key: readKeyByFile(path, what) };
      } catch (err) {
        if (err instanceof KeyFileError) return fail(err.message);
        throw err;
      }
    };

    if (section === 'interface') {
      switch (k) {
        case 'privatekey':
        case 'privatekeyfile':
          if (privateKeyLine) fail(`the private key is already given on line ${privateKeyLine}; keep PrivateKey or PrivateKeyFile, not both`);
          privateKeyLine = lineNo;
          if (k === 'privatekeyfile') ({ path: privateKeyFile, key: privateKey } = keyFile('private key'));
          else privateKey = keyOr(value, () => fail('not a WireGuard key (44 base64 characters, as `wirecage keygen` prints)'));
          break;
        case 'address':
          for (const a of list(value)) {
            // wg-quick keeps the host part of an interface address.
            addresses.push(cidrOr(a, () => fail(`"${a}" is not an IPv4 or IPv6 address with an optional /prefix`), { keepHostBits: true }));
          }
          break;
        case 'dns':
          // As wg-quick: an IP address is a server, anything else a search domain.
          for (const d of list(value)) {
            if (isIP(d)) dns.servers.push(d);
            else if (isHostName(d)) dns.search.push(d.replace(/\.$/, ''));
            else fail(`"${d}" is neither an IP address nor a search domain`);
          }
          break;
        case 'mtu':
          mtu = intIn(value, 576, 65535) ?? fail(`"${value}" is not an MTU (576-65535)`);
          mtuLine = lineNo;
          break;
        case 'listenport':
          listenPort = intIn(value, 0, 65535) ?? fail(`"${value}" is not a port (0-65535)`);
          break;
      }
      continue;
    }

    const peer = peers[peers.length - 1]!;
    switch (k) {
      case 'publickey':
        peer.publicKey = keyOr(value, () => fail('not a WireGuard key (44 base64 characters, as `wirecage pubkey` prints)'));
        break;
      case 'presharedkey':
      case 'presharedkeyfile':
        if (peer.presharedKey) fail('the preshared key is already given in this [Peer]; keep PresharedKey or PresharedKeyFile, not both');
        if (k === 'presharedkeyfile') ({ path: peer.presharedKeyFile, key: peer.presharedKey } = keyFile('preshared key'));
        else peer.presharedKey = keyOr(value, () => fail('not a WireGuard key (44 base64 characters, as `wg genpsk` prints)'));
        break;
      case 'endpoint':
        peer.endpoint = parseEndpoint(value) ?? fail(`"${value}" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535`);
        break;
      case 'allowedips':
        for (const a of list(value)) peer.allowedIps.push(cidrOr(a, () => fail(`"${a}" is not an IPv4 or IPv6 prefix`)));
        break;
      case 'persistentkeepalive':
        peer.persistentKeepalive = (value.toLowerCase() === 'off' ? 0 : intIn(value, 0, 65535)) ?? fail(`"${value}" is not a number of seconds (0-65535) or "off"`);
        break;
    }
  }

  const lastLine = Math.max(1, text.endsWith('\n') ? lines.length - 1 : lines.length);
  if (!interfaceLine) throw new ConfigError(file, 1, null, 'no [Interface] section');
  if (!privateKey) throw new ConfigError(file, interfaceLine, 'PrivateKey', 'missing from [Interface]');
  if (peers.length === 0) throw new ConfigError(file, lastLine, null, 'no [Peer] section: the cage would have no way out');
  const byKey = new Map<string, number>();
  for (const p of peers) {
    if (!p.publicKey) throw new ConfigError(file, p.line, 'PublicKey', 'missing from this [Peer]');
    const id = p.publicKey.toString('base64');
    const first = byKey.get(id);
    if (first) throw new ConfigError(file, p.line, 'PublicKey', `the same peer as the [Peer] on line ${first}`);
    byKey.set(id, p.line);
  }
  if (mtu !== undefined && mtu < 1280 && addresses.some((a) => a.family === 6)) {
    throw new ConfigError(file, mtuLine, 'MTU', `${mtu} is below 1280, the minimum for IPv6, and Address has an IPv6 address`);
  }
  return {
    file,
    interface: { privateKey, privateKeyFile, addresses, dns, mtu, listenPort },
    peers: peers as PeerConfigFile[],
  };
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
