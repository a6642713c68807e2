// The NAT lab's far side and the probes that cross it: the "internet" host
// (server/fixtures/nat-internet.mjs) the server suites fetch from, and
// nat-probe.mjs run in one cage (each `wirecage run` registers, and
// registrations are rate-limited per source).
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startFixture } from './cage.js';
import type { Netns } from './netns.js';
import type { LabProcess } from './process.js';
import { INET4, INET6, runCaged, type SrvLab } from './srv-lab.js';

const INTERNET = fileURLToPath(new URL('../server/fixtures/nat-internet.mjs', import.meta.url));
export const NAT_PROBE = fileURLToPath(new URL('../server/fixtures/nat-probe.mjs', import.meta.url));

export interface InternetHost {
  proc: LabProcess;
  /** SHA-256 of what GET /big sends. */
  bigSha256: string;
}

/**
 * nat-internet.mjs in `ns` on `host`: HTTP on `httpPort` (/hello, /big of `bigBytes`), UDP echo on 7,
 * half-close service on `httpPort` + 2; resolves once every socket is bound.
 */
export async function startInternet(ns: Netns, host: string, bigBytes = 1, httpPort = 8080): Promise<InternetHost> {
  const proc = await startFixture(ns, INTERNET, [host, String(httpPort), '7', String(bigBytes)]);
  const m = /listening ([0-9a-f]{64})/.exec(proc.output());
  if (!m) throw new Error(`nat-internet.mjs did not say what it serves:\n${proc.describe()}`);
  return { proc, bigSha256: m[1]! };
}

/** nat-probe.mjs once per argument list, all in one cage of `wirecage run`: one output line per probe. */
export async function natProbes(l: SrvLab, server: LabProcess, ...runs: string[][]): Promise<string[]> {
  const script = runs.map((args) => [process.execPath, NAT_PROBE, ...args].map((a) => `'${a}'`).join(' ')).join('; ');
  const r = await runCaged(l, ['sh', '-c', script]);
  assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
  return r.stdout.trim().split('\n');
}

/** Half-close carried both ways (IPv4 and IPv6): the service answers after the cage has finished sending; its two answers. */
export const halfCloseAnswers = (l: SrvLab, server: LabProcess): Promise<string[]> =>
  natProbes(l, server, ['halfclose', INET4, '8082', '300000'], ['halfclose', INET6, '8082', '1000']);

/**
 * TCP to a closed port of the internet host from one cage: nat-probe's lines for IPv4 and IPv6, then
 * "curl <exit code>" for an HTTP request to it; curl's stderr beside them.
 */
export async function closedPortOutcome(l: SrvLab): Promise<{ lines: string[]; stderr: string }> {
  const probe = (host: string) => `${process.execPath} ${NAT_PROBE} tcp ${host} 8081`;
  const script = `${probe(INET4)}; ${probe(INET6)}; curl -sS --max-time 10 http://${INET4}:8081/; echo "curl $?"`;
  const r = await runCaged(l, ['sh', '-c', script]);
  return { lines: r.stdout.trim().split('\n'), stderr: r.stderr };
}
