// Server bench: in one run on one machine,
// - throughput from a cage through a server to a lab host, iperf3 one TCP
//   stream each way (-R), for wirecagesrv with its userspace NAT, wirecagesrv
//   --nat kernel, and wireguard-go with ip_forward and an nftables masquerade
//   (the anchor), rounds interleaved so compared runs are seconds apart;
// - registrations per second: POST /v1/register with fresh keys over
//   keep-alive connections from the lab's client namespace for a few seconds
//   (the server started with --register-rate high, as only a load test should);
// - memory per 1,000 registered peers: stage 2's VmRSS after 1,000 and after
//   5,000 registrations of a fresh server, the difference per 1,000;
// the last two with the default data-plane workers and with --workers 0.
// Writes bench/results/server.md and server.svg and prints the report. Needs
// root, wireguard-go, wg, iperf3, nft, nsenter and a built tree (`npm run build`).
//
//   npm run bench:server -w bench -- [--duration S] [--rounds N]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { machineInfo } from './lib/machine.js';
import { medianRun } from './lib/results.js';
import { renderServerChart } from './lib/server-chart.js';
import { SETUPS, SRV_BIN, buildServerPath, rssBytes, startWirecagesrv, type ServerPath } from './lib/server-labs.js';
import { SERVER_TESTS, registerLoad, runServerTransfer } from './lib/server-measure.js';
import { renderServerReport, type ServerBenchRun, type SetupResult } from './lib/server-report.js';
import { BenchSession, wirecageRunHelp } from './lib/session.js';
import { packageDir } from '@wirecage/tests/lib/package-bin.js';

const session = new BenchSession('server');
const { log, newLab, step, teardownAll } = session;

const USAGE = `usage: npm run bench:server -w bench -- [--duration S] [--rounds N]
  --duration S   seconds of each iperf3 transfer (1-60, default 5)
  --rounds N     interleaved rounds of every setup (1-10, default 3)
Writes bench/results/server.md and server.svg; needs root and a built tree (npm run build).`;

function usageError(text: string): never {
  process.stderr.write(`server bench: ${text}\n${USAGE}\n`);
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: { duration: { type: 'string' }, rounds: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values;
  } catch (err) {
    return usageError((err as Error).message);
  }
})();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function option(name: 'duration' | 'rounds', fallback: number, min: number, max: number): number {
  const text = args[name];
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) usageError(`--${name} must be a whole number from ${min} to ${max}`);
  return v;
}
const duration = option('duration', 5, 1, 60);
const rounds = option('rounds', 3, 1, 10);
const REG_SECONDS = 5;
const REG_CONCURRENCY = 8;
const outDir = fileURLToPath(new URL('./results/', import.meta.url));

// wirecagesrv as the tests' declared dependency finds it; its stage 2 is compiled next to its entry.
const stage2 = join(packageDir('wirecagesrv'), 'dist', 'stage2', 'main.js');
if (!existsSync(stage2) || !existsSync(SRV_BIN)) throw new Error(`${stage2} is missing: build the tree first with \`npm run build\``);
await wirecageRunHelp();
const machine = machineInfo(fileURLToPath(new URL('..', import.meta.url)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const setups: SetupResult[] = [];
const benchRun: ServerBenchRun = { machine, duration, rounds, setups, load: [], elapsed: 0 };
try {
  const paths: ServerPath[] = [];
  for (const setup of SETUPS) {
    const lab = newLab();
    log(`building ${setup} in lab ${lab.id}`);
    paths.push(await step(() => buildServerPath(lab, setup, [])));
    setups.push({ setup, rounds: {}, transfers: {} });
  }
  for (let round = 1; round <= rounds; round++) {
    for (const test of SERVER_TESTS) {
      for (const [i, path] of paths.entries()) {
        const r = await step(() => runServerTransfer(path, test, duration));
        (setups[i]!.rounds[test.id as 'tcp'] ??= []).push(r);
        log(
          `round ${round} ${test.id} ${path.setup}: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s; CPU cage ${r.cpu.left.toFixed(2)} s, server ${r.cpu.right.toFixed(2)} s`,
        );
      }
    }
  }
  for (const s of setups) for (const [id, runs] of Object.entries(s.rounds)) s.transfers[id as 'tcp'] = medianRun(runs);
  await teardownAll();

  const lab = newLab();
  const cli = await step(() => lab.namespace('cli'));
  const srv = await step(() => lab.namespace('srv'));
  const srvAddr = (await step(() => lab.veth(srv, cli, { v6: false }))).a.v4!;
  const dir = await step(() => lab.tempDir());
  const loadFlags = ['--register-rate', '1000000', '--dns-upstream', '127.0.0.1:53'];
  // The default (data-plane workers, one per CPU) and the engine on the main thread alone: the
  // workers' share of the peer table shows in both the registration rate and the memory.
  for (const variant of [
    { label: 'default (workers = CPUs)', flags: [] },
    { label: '--workers 0', flags: ['--workers', '0'] },
  ]) {
    log(`registrations, ${variant.label}: ${REG_CONCURRENCY} keep-alive connections for ${REG_SECONDS} s`);
    const regServer = await step(() =>
      startWirecagesrv(srv, cli, srvAddr, dir, [...loadFlags, ...variant.flags, '--subnet', '10.200.0.0/16', '--max-peers', '65000']),
    );
    const reg = await step(() => registerLoad(cli, regServer, { concurrency: REG_CONCURRENCY, seconds: REG_SECONDS, count: 0 }));
    log(`registrations: ${reg.ok} in ${reg.seconds.toFixed(1)} s = ${(reg.ok / reg.seconds).toFixed(0)}/s (${reg.failed} failed)`);
    await step(() => regServer.process.stop(10_000));

    log(`memory, ${variant.label}: a fresh server, 1,000 then 5,000 registered peers`);
    const memServer = await step(() =>
      startWirecagesrv(srv, cli, srvAddr, dir, [...loadFlags, ...variant.flags, '--subnet', '10.200.0.0/18', '--max-peers', '6000']),
    );
    await sleep(1000);
    const base = rssBytes(memServer.stage2);
    const fill = async (count: number) => {
      const r = await step(() => registerLoad(cli, memServer, { concurrency: REG_CONCURRENCY, seconds: 120, count }));
      if (r.ok !== count) throw new Error(`asked for ${count} registrations, ${r.ok} succeeded: ${r.firstError ?? ''}`);
      await sleep(2000);
      return { rss: rssBytes(memServer.stage2), rate: r.ok / r.seconds };
    };
    const first = await fill(1000);
    const next = await fill(4000);
    await step(() => memServer.process.stop(10_000));
    benchRun.load.push({
      label: variant.label,
      registrations: { ...reg, concurrency: REG_CONCURRENCY, perSecond: reg.ok / reg.seconds },
      memory: { base, after1k: first.rss, after5k: next.rss, perThousand: (next.rss - first.rss) / 4, rates: [first.rate, next.rate] },
    });
    log(
      `memory: VmRSS ${(base / 1e6).toFixed(1)} MB empty, ${(first.rss / 1e6).toFixed(1)} MB at 1,000, ${(next.rss / 1e6).toFixed(1)} MB at 5,000; ` +
        `registered at ${first.rate.toFixed(0)}/s, then ${next.rate.toFixed(0)}/s`,
    );
  }
} finally {
  await teardownAll();
}

machine.loadEnd = os.loadavg();
benchRun.elapsed = (Date.now() - session.started) / 1000;
const report = renderServerReport(benchRun);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'server.md'), report);
writeFileSync(join(outDir, 'server.svg'), renderServerChart(benchRun));
console.log(report);
log(`wrote ${join(outDir, 'server.md')} and server.svg`);
