// wg-quick configuration files, as users get them from any WireGuard server.
// Everything wirecage can honour inside a cage is accepted; what would run
// shell hooks or touch the host's routing is refused by name. Every error
// names the file, the line and the key, and never repeats a key's value.
//
// One wirecage extension: PrivateKeyFile = PATH (and PresharedKeyFile) reads
// the key from a 0600 file instead of holding it, so a config written from
// the earlier wirecage's --wg-private-key-file never copies the key. wg-quick
// itself does not know these keys.
import type { Cidr } from '@wirecage/wg-engine/config';
import { INTERFACE_KEYS, PEER_KEYS, type InterfaceDraft, type KeyHandler, type KeyLine, type PeerDraft } from './wg-quick-keys.js';
import { WirecageError } from '../errors.js';

export { parseEndpoint } from './wg-quick-keys.js';

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
    /** ReresolveAfter (wirecage's own key): seconds of failed handshakes before the Endpoint's name is resolved again. */
    reresolveAfter?: number;
    /** Linger (wirecage's own key): seconds the cage's network stays after the command for its closing TCP connections. */
    linger?: number;
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

/** Where parsing stands: what the lines so far gave, and the section the next key belongs to. */
interface Draft {
  section: 'interface' | 'peer' | null;
  interfaceLine: number;
  /** Line of each once-only key given so far in the current section. */
  seen: Map<string, number>;
  iface: InterfaceDraft;
  peers: PeerDraft[];
}

export function parseWgQuick(text: string, file: string): WgQuickConfig {
  const draft: Draft = {
    section: null,
    interfaceLine: 0,
    seen: new Map(),
    iface: { privateKeyLine: 0, addresses: [], dns: { servers: [], search: [] }, mtuLine: 0 },
    peers: [],
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/#.*$/, '').trim();
    if (raw === '') continue;
    const sectionMatch = /^\[\s*(\w+)\s*\]$/.exec(raw);
    if (sectionMatch) openSection(draft, sectionMatch[1]!, file, lineNo);
    else applyKeyLine(draft, raw, file, lineNo);
  }
  const lastLine = Math.max(1, text.endsWith('\n') ? lines.length - 1 : lines.length);
  return finish(draft, file, lastLine);
}

function openSection(draft: Draft, header: string, file: string, lineNo: number): void {
  const name = header.toLowerCase();
  if (name === 'interface') {
    if (draft.interfaceLine)
      throw new ConfigError(
        file,
        lineNo,
        null,
        `a second [Interface] section (the first is on line ${draft.interfaceLine}); a file describes one interface`,
      );
    draft.interfaceLine = lineNo;
  } else if (name === 'peer') {
    draft.peers.push({ allowedIps: [], line: lineNo });
  } else {
    throw new ConfigError(file, lineNo, null, `unknown section [${header}]; expected [Interface] or [Peer]`);
  }
  draft.section = name;
  draft.seen = new Map();
}

function applyKeyLine(draft: Draft, raw: string, file: string, lineNo: number): void {
  // The line is not quoted back: it may be a private key without its "PrivateKey =",
  // whose own trailing "=" would otherwise pass for the separator (hence also
  // the length limit: no key name is longer than 31 characters, every key is 43).
  const kv = /^([A-Za-z][A-Za-z0-9]{0,30})\s*=(.*)$/.exec(raw);
  if (!kv) throw new ConfigError(file, lineNo, null, 'expected "Key = Value" or a [Section] header');
  const key = kv[1]!;
  const value = kv[2]!.trim();
  const k = key.toLowerCase();
  const { section } = draft;
  if (!section) throw new ConfigError(file, lineNo, key, 'appears before any [Interface] or [Peer] section');
  if (Object.hasOwn(REFUSED, k)) throw new ConfigError(file, lineNo, key, REFUSED[k]!);
  // Typed for what both tables share (name, once); apply is called through the section's own table below.
  const handlers: Record<string, KeyHandler<never>> = section === 'interface' ? INTERFACE_KEYS : PEER_KEYS;
  if (!Object.hasOwn(handlers, k)) {
    const names = Object.values(handlers)
      .map((h) => h.name)
      .join(', ');
    throw new ConfigError(file, lineNo, key, `unknown key in [${section === 'interface' ? 'Interface' : 'Peer'}] (known: ${names})`);
  }
  if (value === '') throw new ConfigError(file, lineNo, key, 'has no value');
  if (handlers[k]!.once) {
    const first = draft.seen.get(k);
    if (first) throw new ConfigError(file, lineNo, key, `given twice in this section (first on line ${first})`);
    draft.seen.set(k, lineNo);
  }
  const line: KeyLine = {
    file,
    lineNo,
    value,
    k,
    fail: (reason) => {
      throw new ConfigError(file, lineNo, key, reason);
    },
  };
  if (section === 'interface') INTERFACE_KEYS[k]!.apply(draft.iface, line);
  else PEER_KEYS[k]!.apply(draft.peers[draft.peers.length - 1]!, line);
}

/** The checks that need the whole file: required sections and keys, one [Peer] per key, MTU against the addresses. */
function finish(draft: Draft, file: string, lastLine: number): WgQuickConfig {
  const { iface, peers } = draft;
  if (!draft.interfaceLine) throw new ConfigError(file, 1, null, 'no [Interface] section');
  if (!iface.privateKey) throw new ConfigError(file, draft.interfaceLine, 'PrivateKey', 'missing from [Interface]');
  if (peers.length === 0) throw new ConfigError(file, lastLine, null, 'no [Peer] section: the cage would have no way out');
  const byKey = new Map<string, number>();
  for (const p of peers) {
    if (!p.publicKey) throw new ConfigError(file, p.line, 'PublicKey', 'missing from this [Peer]');
    const id = p.publicKey.toString('base64');
    const first = byKey.get(id);
    if (first) throw new ConfigError(file, p.line, 'PublicKey', `the same peer as the [Peer] on line ${first}`);
    byKey.set(id, p.line);
  }
  const { privateKey, privateKeyFile, addresses, dns, mtu, listenPort, reresolveAfter, linger } = iface;
  if (mtu !== undefined && mtu < 1280 && addresses.some((a) => a.family === 6)) {
    throw new ConfigError(file, iface.mtuLine, 'MTU', `${mtu} is below 1280, the minimum for IPv6, and Address has an IPv6 address`);
  }
  return {
    file,
    // ReresolveAfter and Linger are wirecage's own keys: absent from a file without them, as from a config made of flags.
    interface: {
      privateKey,
      privateKeyFile,
      addresses,
      dns,
      mtu,
      listenPort,
      ...(reresolveAfter === undefined ? {} : { reresolveAfter }),
      ...(linger === undefined ? {} : { linger }),
    },
    peers: peers as PeerConfigFile[],
  };
}
