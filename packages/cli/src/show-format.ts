// Formats a UAPI get=1 answer the way `wg show` prints an interface.
// The private and preshared keys are read but never printed.
import { publicKeyOf } from '@wirecage/wg-engine';

function ago(seconds: number): string {
  if (seconds < 1) return 'Now';
  const parts: string[] = [];
  const units: [number, string][] = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  let s = Math.floor(seconds);
  for (const [n, name] of units) {
    const q = Math.floor(s / n);
    s -= q * n;
    if (q) parts.push(`${q} ${name}${q === 1 ? '' : 's'}`);
  }
  return `${parts.join(', ')} ago`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

export function formatUapiShow(name: string, uapi: string, nowMs: number): string {
  const lines = uapi.split('\n').filter((l) => l && !l.startsWith('errno='));
  const out: string[] = [`interface: ${name}`];
  let listenPort = '';
  let publicKey: string | null = null;
  const peers: Record<string, string | string[]>[] = [];
  for (const l of lines) {
    const eq = l.indexOf('=');
    const k = l.slice(0, eq);
    const v = l.slice(eq + 1);
    if (k === 'public_key') peers.push({ public_key: v, allowed_ip: [] });
    else if (peers.length === 0) {
      if (k === 'listen_port') listenPort = v;
      if (k === 'private_key') publicKey = publicKeyOf(Buffer.from(v, 'hex')).toString('base64');
    } else if (k === 'allowed_ip') (peers[peers.length - 1]!.allowed_ip as string[]).push(v);
    else peers[peers.length - 1]![k] = v;
  }
  if (publicKey) out.push(`  public key: ${publicKey}`, '  private key: (hidden)');
  if (listenPort) out.push(`  listening port: ${listenPort}`);
  for (const p of peers) {
    out.push('', `peer: ${b64(p.public_key as string)}`);
    if (p.preshared_key && !/^0+$/.test(p.preshared_key as string)) out.push('  preshared key: (hidden)');
    if (p.endpoint) out.push(`  endpoint: ${p.endpoint}`);
    const allowed = p.allowed_ip as string[];
    out.push(`  allowed ips: ${allowed.length ? allowed.join(', ') : '(none)'}`);
    const sec = Number(p.last_handshake_time_sec ?? 0);
    if (sec) out.push(`  latest handshake: ${ago(nowMs / 1000 - sec)}`);
    const rx = Number(p.rx_bytes ?? 0);
    const tx = Number(p.tx_bytes ?? 0);
    if (rx || tx) out.push(`  transfer: ${bytes(rx)} received, ${bytes(tx)} sent`);
    const ka = Number(p.persistent_keepalive_interval ?? 0);
    if (ka) out.push(`  persistent keepalive: every ${ka} second${ka === 1 ? '' : 's'}`);
  }
  return out.join('\n') + '\n';
}
