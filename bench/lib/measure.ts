// One measurement = one iperf3 run (or one ping series) from the left side
// of a pair, with the CPU time both endpoint processes spent during it read
// from /proc before and after. Bytes and CPU cover the same window (no
// iperf3 -O), so CPU per GB is their plain quotient.
import type { Endpoint } from './endpoint.js';
import type { Pair } from './pairs.js';
import { cpuSeconds } from './procfs.js';

export const UDP_DATAGRAM = 1300;

export type TestId = 'tcp' | 'tcp-p4' | 'tcp-r' | 'udp';

export const TESTS: { id: TestId; title: string; args: string[] }[] = [
  { id: 'tcp', title: 'TCP, 1 stream', args: [] },
  { id: 'tcp-p4', title: 'TCP, 4 streams (-P 4)', args: ['-P', '4'] },
  { id: 'tcp-r', title: 'TCP, reverse (-R)', args: ['-R'] },
  { id: 'udp', title: `UDP, ${UDP_DATAGRAM} B datagrams`, args: ['-u', '-l', String(UDP_DATAGRAM)] },
];

export interface TransferResult {
  test: TestId;
  /** Payload bytes the receiving iperf3 got. */
  bytes: number;
  seconds: number;
  /** Payload bits per second at the receiver. */
  bitsPerSecond: number;
  udp?: { sent: number; received: number; lostPercent: number; packetsPerSecond: number };
  /** CPU seconds (user + system, all threads) each endpoint spent during the run. */
  cpu: { left: number; right: number };
}

export interface PingResult {
  sent: number;
  received: number;
  medianMs: number;
  avgMs: number;
  /** Median over the bare veth between the pair's namespaces, no tunnel. */
  outerMedianMs: number;
}

interface IperfSum {
  bytes: number;
  seconds: number;
  bits_per_second: number;
  packets?: number;
  lost_packets?: number;
  lost_percent?: number;
}

function iperfFailure(pair: Pair, test: string, out: { stdout: string; stderr: string; code: number | null }): Error {
  let why = out.stderr.trim();
  try {
    why = (JSON.parse(out.stdout) as { error?: string }).error ?? why;
  } catch {
    // not JSON: keep stderr
  }
  return new Error(
    `iperf3 ${test} over ${pair.name} (${pair.left.address} -> ${pair.right.address}) failed (exit ${out.code}): ${why || 'no message'}`,
  );
}

export async function runTransfer(pair: Pair, test: (typeof TESTS)[number], duration: number, udpBitrate: string): Promise<TransferResult> {
  const args = ['-c', pair.right.address, '-t', String(duration), '-J', '--connect-timeout', '5000', ...test.args];
  if (test.id === 'udp') args.push('-b', udpBitrate);
  const cpu0 = [cpuSeconds(pair.left.pid), cpuSeconds(pair.right.pid)];
  let out = await pair.left.exec('iperf3', args, { timeoutMs: (duration + 20) * 1000 });
  // The server takes a moment to be free again after the previous run's teardown.
  if (out.code !== 0 && /busy/.test(out.stdout)) out = await pair.left.exec('iperf3', args, { timeoutMs: (duration + 20) * 1000 });
  const cpu = { left: cpuSeconds(pair.left.pid) - cpu0[0]!, right: cpuSeconds(pair.right.pid) - cpu0[1]! };
  if (out.code !== 0) throw iperfFailure(pair, test.id, out);
  const end = (JSON.parse(out.stdout) as { end: { sum_received?: IperfSum } }).end;
  const r = end.sum_received;
  if (r === undefined) throw new Error(`iperf3 ${test.id} over ${pair.name}: no end.sum_received in its JSON (iperf3 older than 3.x?)`);
  const result: TransferResult = { test: test.id, bytes: r.bytes, seconds: r.seconds, bitsPerSecond: r.bits_per_second, cpu };
  if (test.id === 'udp') {
    const sent = r.packets ?? 0;
    const received = sent - (r.lost_packets ?? 0);
    result.udp = { sent, received, lostPercent: r.lost_percent ?? 0, packetsPerSecond: received / r.seconds };
  }
  return result;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function pingTimes(exec: Endpoint['exec'], target: string, count: number): Promise<{ sent: number; times: number[] }> {
  const out = await exec('ping', ['-n', '-c', String(count), '-i', '0.02', '-W', '1', target], { timeoutMs: count * 1000 + 5000 });
  const times = [...out.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length === 0)
    throw new Error(`ping ${target}: no replies (exit ${out.code}): ${(out.stdout + out.stderr).trim().split('\n').slice(-3).join(' | ')}`);
  return { sent: count, times };
}

export async function runPing(pair: Pair, count: number): Promise<PingResult> {
  const tunnel = await pingTimes(pair.left.exec, pair.right.address, count);
  const outer = await pingTimes(pair.outerExec, pair.outerTarget, count);
  return {
    sent: tunnel.sent,
    received: tunnel.times.length,
    medianMs: median(tunnel.times),
    avgMs: tunnel.times.reduce((a, b) => a + b, 0) / tunnel.times.length,
    outerMedianMs: median(outer.times),
  };
}
