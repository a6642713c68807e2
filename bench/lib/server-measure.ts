// The measurements of bench/server.bench.ts: iperf3 from a cage through a
// server to the lab host (the cage's stage 2 and the server process timed
// from /proc around the run, as measure.ts does for the data-plane pairs),
// and registrations against a wirecagesrv from the lab's client namespace
// (lib/register-load.mjs: fresh keys, keep-alive connections).
import { fileURLToPath } from 'node:url';
import type { Netns } from '@wirecage/tests/lib/netns.js';
import { TESTS, type TestId, type TransferResult } from './measure.js';
import { cpuSeconds } from './procfs.js';
import type { LabServer, ServerPath } from './server-labs.js';

/** The tests of this bench: one TCP stream each way. */
export const SERVER_TESTS = TESTS.filter((t) => t.id === 'tcp' || t.id === 'tcp-r');
export type ServerTestId = Extract<TestId, 'tcp' | 'tcp-r'>;

const LOAD = fileURLToPath(new URL('./register-load.mjs', import.meta.url));

/** One iperf3 run; `cpu.left` is the cage's stage 2, `cpu.right` the server process. */
export async function runServerTransfer(path: ServerPath, test: (typeof SERVER_TESTS)[number], duration: number): Promise<TransferResult> {
  const args = ['-c', path.target, '-t', String(duration), '-J', '--connect-timeout', '5000', ...test.args];
  const cpu0 = [cpuSeconds(path.cage.pid), cpuSeconds(path.serverPid)];
  let out = await path.cage.exec('iperf3', args, { timeoutMs: (duration + 20) * 1000 });
  // iperf3 -s takes a moment to be free again after the previous run.
  if (out.code !== 0 && /busy/.test(out.stdout)) out = await path.cage.exec('iperf3', args, { timeoutMs: (duration + 20) * 1000 });
  const cpu = { left: cpuSeconds(path.cage.pid) - cpu0[0]!, right: cpuSeconds(path.serverPid) - cpu0[1]! };
  if (out.code !== 0) {
    let why = out.stderr.trim();
    try {
      why = (JSON.parse(out.stdout) as { error?: string }).error ?? why;
    } catch {
      // not JSON: keep stderr
    }
    throw new Error(`iperf3 ${test.id} through ${path.setup} failed (exit ${out.code}): ${why || 'no message'}`);
  }
  const r = (JSON.parse(out.stdout) as { end: { sum_received?: { bytes: number; seconds: number; bits_per_second: number } } }).end
    .sum_received;
  if (r === undefined) throw new Error(`iperf3 ${test.id} through ${path.setup}: no end.sum_received in its JSON`);
  return { test: test.id, bytes: r.bytes, seconds: r.seconds, bitsPerSecond: r.bits_per_second, cpu };
}

export interface LoadResult {
  ok: number;
  failed: number;
  seconds: number;
  statuses: Record<string, number>;
  firstError?: string;
}

/** Registers fresh keys from `client` until `seconds` pass or `count` succeed (0: no count). */
export async function registerLoad(
  client: Netns,
  server: LabServer,
  o: { concurrency: number; seconds: number; count: number },
): Promise<LoadResult> {
  const r = await client.run(
    process.execPath,
    [LOAD, `${server.api}/v1/register`, String(o.concurrency), String(o.seconds), String(o.count)],
    {
      input: server.token,
      timeoutMs: (o.seconds + 30) * 1000,
    },
  );
  if (r.code !== 0) throw new Error(`register-load.mjs failed (exit ${r.code}): ${r.stderr.trim()}`);
  const result = JSON.parse(r.stdout) as LoadResult;
  if (result.ok === 0)
    throw new Error(`no registration succeeded: ${result.firstError ?? 'no error recorded'}\n${server.process.describe()}`);
  return result;
}
