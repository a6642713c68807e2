// What `wirecage show` prints of a UAPI get=1 answer: the public state of an
// interface, as `wg show` words it, or as JSON (`show --json`). The private
// and preshared keys are read but never kept: only whether a preshared key
// is set, and the public key derived from the private one.
import { publicKeyOf } from '@wirecage/wg-engine';

export interface ShowPeer {
  publicKey: string;
  /** "(hidden)" when the peer has a preshared key, else null: never the key. */
  presharedKey: '(hidden)' | null;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the latest handshake, null before the first. */
  latestHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  /** Seconds, 0 when off. */
  persistentKeepalive: number;
  /** The tunnel's healing state (cage/heal.ts), when the cage keeps one: "up" or "handshaking". */
  state?: 'up' | 'handshaking';
  /** Unix seconds since when handshakes have been answered; null while handshaking. */
  upSince?: number | null;
  /** The last failure seen (why it is handshaking, or was: kept once it is up again); null before any. */
  lastError?: string | null;
}

/** A peer's state as the cage's health file has it (cage/heal.ts's PeerHealth). */
export interface ShowHealth {
  publicKey: string;
  state: 'up' | 'handshaking';
  upSince: number | null;
  lastError: string | null;
}

/** The interface with each peer's healing state merged in (a peer the file does not name is left as it is). */
export function withHealth(iface: ShowInterface, health: ShowHealth[]): ShowInterface {
  const byKey = new Map(health.map((h) => [h.publicKey, h]));
  return {
    ...iface,
    peers: iface.peers.map((p) => {
      const h = byKey.get(p.publicKey);
      return h ? { ...p, state: h.state, upSince: h.upSince === null ? null : Math.floor(h.upSince / 1000), lastError: h.lastError } : p;
    }),
  };
}

export interface ShowInterface {
  publicKey: string | null;
  listenPort: number | null;
  peers: ShowPeer[];
}

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

/** The public state in a UAPI get=1 answer. */
export function parseUapiShow(uapi: string): ShowInterface {
  const iface: ShowInterface = { publicKey: null, listenPort: null, peers: [] };
  for (const l of uapi.split('\n')) {
    if (!l || l.startsWith('errno=')) continue;
    const eq = l.indexOf('=');
    const k = l.slice(0, eq);
    const v = l.slice(eq + 1);
    const peer = iface.peers[iface.peers.length - 1];
    if (k === 'public_key') {
      iface.peers.push({
        publicKey: b64(v),
        presharedKey: null,
        endpoint: null,
        allowedIps: [],
        latestHandshake: null,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: 0,
      });
    } else if (!peer) {
      if (k === 'listen_port') iface.listenPort = Number(v);
      if (k === 'private_key') iface.publicKey = publicKeyOf(Buffer.from(v, 'hex')).toString('base64');
    } else if (k === 'preshared_key') peer.presharedKey = /^0+$/.test(v) ? null : '(hidden)';
    else if (k === 'endpoint') peer.endpoint = v;
    else if (k === 'allowed_ip') peer.allowedIps.push(v);
    else if (k === 'last_handshake_time_sec') peer.latestHandshake = Number(v) || null;
    else if (k === 'rx_bytes') peer.rxBytes = Number(v);
    else if (k === 'tx_bytes') peer.txBytes = Number(v);
    else if (k === 'persistent_keepalive_interval') peer.persistentKeepalive = Number(v);
  }
  return iface;
}

function ago(seconds: number): string {
  if (seconds < 1) return 'Now';
  const parts: string[] = [];
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  let s = Math.floor(seconds);
  for (const [n, name] of units) {
    const q = Math.floor(s / n);
    s -= q * n;
    if (q) parts.push(`${q} ${name}${q === 1 ? '' : 's'}`);
  }
  return `${parts.join(', ')} ago`;
}

/** A byte count as `wg show` words it: B below 1 KiB, else KiB/MiB/... with `decimals` places. */
export function formatBytes(n: number, decimals = 2): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(decimals)} ${units[i]}`;
}

/** `wg show`'s text for one interface. */
export function formatShow(name: string, iface: ShowInterface, nowMs: number): string {
  const out: string[] = [`interface: ${name}`];
  if (iface.publicKey) out.push(`  public key: ${iface.publicKey}`, '  private key: (hidden)');
  if (iface.listenPort) out.push(`  listening port: ${iface.listenPort}`);
  for (const p of iface.peers) {
    out.push('', `peer: ${p.publicKey}`);
    if (p.presharedKey) out.push(`  preshared key: ${p.presharedKey}`);
    if (p.endpoint) out.push(`  endpoint: ${p.endpoint}`);
    out.push(`  allowed ips: ${p.allowedIps.length ? p.allowedIps.join(', ') : '(none)'}`);
    if (p.latestHandshake) out.push(`  latest handshake: ${ago(nowMs / 1000 - p.latestHandshake)}`);
    if (p.state === 'up' && p.upSince) out.push(`  state: up, since ${ago(nowMs / 1000 - p.upSince).replace(/^Now$/, 'a moment ago')}`);
    else if (p.state) out.push(`  state: ${p.state}`);
    if (p.lastError) out.push(`  last error: ${p.lastError}`);
    if (p.rxBytes || p.txBytes) out.push(`  transfer: ${formatBytes(p.rxBytes)} received, ${formatBytes(p.txBytes)} sent`);
    const ka = p.persistentKeepalive;
    if (ka) out.push(`  persistent keepalive: every ${ka} second${ka === 1 ? '' : 's'}`);
  }
  return out.join('\n') + '\n';
}
