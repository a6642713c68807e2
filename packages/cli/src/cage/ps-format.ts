// `wirecage ps`'s rows, and the table it prints of them (--json prints the rows).
import { formatBytes } from '../show-format.js';
export interface PsRow {
  name: string | null;
  source: string | null;
  tun: string;
  pid: number;
  addresses: string[];
  endpoint: string | null;
  latestHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  processes: number | null;
  startedAt: number | null;
  uptime: number | null;
  keep: boolean;
  state: string | null;
  /** Unix seconds since when handshakes have been answered; null while handshaking or unknown. */
  upSince: number | null;
  /** The last failure the tunnel's healing saw (kept once it is up again); null if none. */
  lastError: string | null;
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86400)}d${String(Math.floor(seconds / 3600) % 24).padStart(2, '0')}h`;
}

const HEADER = ['NAME', 'SOURCE', 'ADDRESSES', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX', 'PROCS', 'UPTIME'];

export function formatPs(rows: PsRow[], nowMs: number): string {
  if (rows.length === 0) return 'no cage is running\n';
  const cells = rows.map((r) => [
    r.name ?? '-',
    r.source ?? '-',
    r.addresses.join(',') || '-',
    r.endpoint ?? '-',
    r.latestHandshake === null ? (r.state ?? 'none') : `${duration(Math.max(0, Math.floor(nowMs / 1000) - r.latestHandshake))} ago`,
    formatBytes(r.rxBytes, 1),
    formatBytes(r.txBytes, 1),
    r.processes === null ? '?' : String(r.processes),
    r.uptime === null ? '?' : duration(r.uptime),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [line(HEADER), ...cells.map(line)].join('\n') + '\n';
}
