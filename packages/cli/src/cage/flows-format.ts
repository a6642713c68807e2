// `wirecage ps NAME --flows`: a flow of the cage's conntrack table as the
// control socket sends it (and --json prints it), and the table of them.
import type { Counters, FlowTuple } from './flow-log-conntrack.js';

export interface LiveFlow extends FlowTuple {
  /** TCP's state (established, time-wait, ...), else assured, replied or unreplied. */
  state: string;
  /** From src to dst and back, so far. */
  toDst?: Counters;
  toSrc?: Counters;
  /** When the kernel started tracking it (ISO), and its age in seconds; null when the kernel gives no timestamp. */
  start: string | null;
  age: number | null;
}

const HEADER = ['PROTO', 'SOURCE', 'DESTINATION', 'STATE', 'OUT', 'IN', 'AGE'];

function endpoint(address: string, port: number | undefined): string {
  if (port === undefined) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function counts(c: Counters | undefined): string {
  return c ? `${c.packets} pkt/${c.bytes} B` : '-';
}

function age(seconds: number | null): string {
  if (seconds === null) return '?';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}m`;
}

export function formatFlows(name: string, flows: readonly LiveFlow[]): string {
  if (flows.length === 0) return `no flow in the cage ${name} now\n`;
  const cells = flows.map((f) => [
    f.protocol,
    endpoint(f.src, f.sport),
    f.icmp ? `${f.dst} type ${f.icmp.type} id ${f.icmp.id}` : endpoint(f.dst, f.dport),
    f.state,
    counts(f.toDst),
    counts(f.toSrc),
    age(f.age),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [line(HEADER), ...cells.map(line)].join('\n') + '\n';
}
