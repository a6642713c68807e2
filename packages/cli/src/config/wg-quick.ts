// wg-quick configuration files, as users get them from any WireGuard server.
// Everything wirecage can honour inside a cage is accepted; what would run
// shell hooks or touch the host's routing is refused by name. Every error
// names the file, the line and the key, and never repeats a key's value.
import { isIP } from 'node:net';
import { parseCidr, parseKeyBase64, type Cidr } from '@wirecage/wg-engine';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly key: string | null,
    reason: string,
  ) {
    super(`${file}:${line}: ${key ? `${key}: ` : ''}${reason}`);
  }
}

export interface PeerConfigFile {
  publicKey: Buffer;
  presharedKey?: Buffer;
  endpoint?: { host: string; port: number };
  allowedIps: Cidr[];
  persistentKeepalive?: number;
  line: number;
}

export interface WgQuickConfig {
  file: string;
  interface: {
    privateKey: Buffer;
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

const INTERFACE_KEYS = new Set(['privatekey', 'address', 'dns', 'mtu', 'listenport']);
const PEER_KEYS = new Set(['publickey', 'presharedkey', 'endpoint', 'allowedips', 'persistentkeepalive']);

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function parseEndpoint(value: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]\s]+):(\d+)$/.exec(value);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const host = m[1]!;
  if (value.startsWith('[') && isIP(host) !== 6) return null;
  if (!isIP(host) && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(host)) return null;
  return { host, port };
}

function intIn(value: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(value)) return null;
  const n = Number(value);
  return n >= min && n <= max ? n : null;
}

export function parseWgQuick(text: string, file: string): WgQuickConfig {
  let section: 'interface' | 'peer' | null = null;
  let sawInterface = false;
  let privateKey: Buffer | undefined;
  const addresses: Cidr[] = [];
  const dns = { servers: [] as string[], search: [] as string[] };
  let mtu: number | undefined;
  let listenPort: number | undefined;
  const peers: (Partial<PeerConfigFile> & { allowedIps: Cidr[]; line: number })[] = [];

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/#.*$/, '').trim();
    if (raw === '') continue;
    const sectionMatch = /^\[(\w+)\]$/.exec(raw);
    if (sectionMatch) {
      const name = sectionMatch[1]!.toLowerCase();
      if (name === 'interface') {
        if (sawInterface) throw new ConfigError(file, lineNo, null, 'a second [Interface] section; a file describes one interface');
        sawInterface = true;
        section = 'interface';
      } else if (name === 'peer') {
        section = 'peer';
        peers.push({ allowedIps: [], line: lineNo });
      } else {
        throw new ConfigError(file, lineNo, null, `unknown section [${sectionMatch[1]}]; expected [Interface] or [Peer]`);
      }
      continue;
    }
    const eq = raw.indexOf('=');
    if (eq < 0) throw new ConfigError(file, lineNo, null, `"${raw.slice(0, 40)}" is not a section header or Key = Value`);
    const key = raw.slice(0, eq).trim();
    const value = raw.slice(eq + 1).trim();
    const k = key.toLowerCase();
    if (!section) throw new ConfigError(file, lineNo, key, 'appears before any [Interface] or [Peer] section');
    if (REFUSED[k]) throw new ConfigError(file, lineNo, key, REFUSED[k]!);

    if (section === 'interface') {
      if (!INTERFACE_KEYS.has(k)) throw new ConfigError(file, lineNo, key, `unknown key in [Interface] (known: PrivateKey, Address, DNS, MTU, ListenPort)`);
      switch (k) {
        case 'privatekey':
          try {
            privateKey = parseKeyBase64(value, 'PrivateKey');
          } catch {
            throw new ConfigError(file, lineNo, key, 'not a WireGuard key (44 base64 characters, as `wirecage keygen` prints)');
          }
          break;
        case 'address':
          for (const a of list(value)) {
            try {
              const c = parseCidr(a);
              // wg-quick keeps the host part of an interface address: parse again without masking.
              addresses.push({ ...c, address: parseCidr(a.split('/')[0]!).address });
            } catch {
              throw new ConfigError(file, lineNo, key, `"${a}" is not an IPv4 or IPv6 address with an optional /prefix`);
            }
          }
          break;
        case 'dns':
          for (const d of list(value)) {
            if (isIP(d)) dns.servers.push(d);
            else if (/^[A-Za-z0-9.-]+$/.test(d)) dns.search.push(d);
            else throw new ConfigError(file, lineNo, key, `"${d}" is neither an IP address nor a search domain`);
          }
          break;
        case 'mtu': {
          const n = intIn(value, 576, 65535);
          if (n === null) throw new ConfigError(file, lineNo, key, `"${value}" is not an MTU (576-65535)`);
          mtu = n;
          break;
        }
        case 'listenport': {
          const n = intIn(value, 0, 65535);
          if (n === null) throw new ConfigError(file, lineNo, key, `"${value}" is not a port (0-65535)`);
          listenPort = n;
          break;
        }
      }
      continue;
    }

    const peer = peers[peers.length - 1]!;
    if (!PEER_KEYS.has(k)) throw new ConfigError(file, lineNo, key, 'unknown key in [Peer] (known: PublicKey, PresharedKey, Endpoint, AllowedIPs, PersistentKeepalive)');
    switch (k) {
      case 'publickey':
        try {
          peer.publicKey = parseKeyBase64(value, 'PublicKey');
        } catch {
          throw new ConfigError(file, lineNo, key, 'not a WireGuard key (44 base64 characters)');
        }
        break;
      case 'presharedkey':
        try {
          peer.presharedKey = parseKeyBase64(value, 'PresharedKey');
        } catch {
          throw new ConfigError(file, lineNo, key, 'not a WireGuard key (44 base64 characters, as `wg genpsk` prints)');
        }
        break;
      case 'endpoint': {
        const ep = parseEndpoint(value);
        if (!ep) throw new ConfigError(file, lineNo, key, `"${value}" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535`);
        peer.endpoint = ep;
        break;
      }
      case 'allowedips':
        for (const a of list(value)) {
          try {
            peer.allowedIps.push(parseCidr(a));
          } catch {
            throw new ConfigError(file, lineNo, key, `"${a}" is not an IP prefix`);
          }
        }
        break;
      case 'persistentkeepalive': {
        const n = value.toLowerCase() === 'off' ? 0 : intIn(value, 0, 65535);
        if (n === null) throw new ConfigError(file, lineNo, key, `"${value}" is not a number of seconds (0-65535) or "off"`);
        peer.persistentKeepalive = n;
        break;
      }
    }
  }

  const end = lines.length;
  if (!sawInterface) throw new ConfigError(file, 1, null, 'no [Interface] section');
  if (!privateKey) throw new ConfigError(file, end, 'PrivateKey', 'missing from [Interface]');
  if (peers.length === 0) throw new ConfigError(file, end, null, 'no [Peer] section: the cage would have no way out');
  const seen = new Set<string>();
  for (const p of peers) {
    if (!p.publicKey) throw new ConfigError(file, p.line, 'PublicKey', 'missing from this [Peer]');
    const id = p.publicKey.toString('base64');
    if (seen.has(id)) throw new ConfigError(file, p.line, 'PublicKey', 'the same peer appears twice');
    seen.add(id);
  }
  if (mtu !== undefined && mtu < 1280 && addresses.some((a) => a.family === 6)) {
    throw new ConfigError(file, end, 'MTU', `${mtu} is below 1280, the minimum for IPv6, and Address has an IPv6 address`);
  }
  return {
    file,
    interface: { privateKey, addresses, dns, mtu, listenPort },
    peers: peers as PeerConfigFile[],
  };
}
