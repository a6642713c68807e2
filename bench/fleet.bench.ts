// Fleet bench (issue 16): in the fleet lab of the tests (tests/lib/srv-fleet.ts,
// three `wirecagesrv up` nodes in namespaces of their own on one PostgreSQL),
// - registrations per second through the HTTP API: one node on SQLite, one
//   node on PostgreSQL, three nodes on one PostgreSQL with the load spread
//   over their APIs, the same requests in flight per node, every answered
//   address checked distinct (lib/fleet-register.ts);
// - failover: a cage pinging through node 1, node 1 killed, the time until a
//   reply comes through another node, with the cage's --reresolve-after at
//   its default and at 2 s (lib/fleet-failover.ts).
// Writes bench/results/fleet.md and prints it. Needs root, PostgreSQL from
// Debian and a built tree (`npm run build`).
//
//   npm run bench:fleet -w bench -- [--seconds S] [--rounds N] [--concurrency N] [--failover-rounds N] [--reresolve LIST]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fleetLab, type FleetLab } from '@wirecage/tests/lib/srv-fleet.js';
import { machineInfo } from './lib/machine.js';
import { BenchSession } from './lib/session.js';
import { addFleetServer, failoverRound, type FailoverRound } from './lib/fleet-failover.js';
import { REG_VARIANTS, registerRound, startVariant, stopNodes, type RegRound } from './lib/fleet-register.js';
import { renderFleetReport, type FleetBenchRun } from './lib/fleet-report.js';

const USAGE = `usage: npm run bench:fleet -w bench -- [--seconds S] [--rounds N] [--concurrency N] [--failover-rounds N] [--reresolve LIST]
  --seconds S           length of each registration round (1-60, default 5)
  --rounds N            registration rounds per setup (1-20, default 3)
  --concurrency N       registrations in flight per node (1-64, default 8)
  --failover-rounds N   kills per --reresolve-after value (0-10, default 3; 0: no failover)
  --reresolve LIST      the cage's --reresolve-after values, comma-separated seconds or "default" (default: default,2)
Writes bench/results/fleet.md; needs root, PostgreSQL and a built tree (npm run build).`;

function usageError(text: string): never {
  process.stderr.write(`fleet bench: ${text}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv: string[]) {
  const options = {
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    'failover-rounds': { type: 'string' },
    reresolve: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  let values;
  try {
    values = parseArgs({ args: argv, options, strict: true }).values;
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const whole = (name: keyof typeof values, fallback: number, min: number, max: number) => {
    const text = values[name];
    if (text === undefined) return fallback;
    if (typeof text !== 'string' || !/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
      usageError(`--${name} must be a whole number from ${min} to ${max}`);
    return Number(text);
  };
  const reresolve = (values.reresolve ?? 'default,2').split(',').map((t) => {
    if (t.trim() === 'default') return null;
    if (!/^\d+$/.test(t.trim()) || Number(t) < 1 || Number(t) > 600)
      usageError(`--reresolve: ${JSON.stringify(t)} is neither "default" nor seconds from 1 to 600`);
    return Number(t);
  });
  return {
    seconds: whole('seconds', 5, 1, 60),
    rounds: whole('rounds', 3, 1, 20),
    concurrency: whole('concurrency', 8, 1, 64),
    failoverRounds: whole('failover-rounds', 3, 0, 10),
    reresolve,
  };
}

const opts = parse(process.argv.slice(2));
const session = new BenchSession('fleet');
const { log, step } = session;
const outDir = fileURLToPath(new URL('./results/', import.meta.url));
const machine = machineInfo(fileURLToPath(new URL('..', import.meta.url)));

async function registrations(f: FleetLab): Promise<RegRound[]> {
  const out: RegRound[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const v of REG_VARIANTS) {
      const nodes = await step(() => startVariant(f, v.id, round));
      try {
        const r = await step(() => registerRound(f, v.id, nodes, opts));
        out.push(r);
        log(
          `round ${round} ${v.label}: ${r.perSecond.toFixed(0)}/s (${r.ok} in ${r.seconds.toFixed(1)} s, per node ${r.perNode.join('/')}, ` +
            `${r.failed} failed, ${r.distinct4} distinct addresses, client CPU ${((r.clientCpu / r.seconds) * 100).toFixed(0)} %)`,
        );
      } finally {
        await step(() => stopNodes(nodes));
      }
    }
  }
  return out;
}

async function failovers(f: FleetLab): Promise<FailoverRound[]> {
  const out: FailoverRound[] = [];
  if (opts.failoverRounds === 0) return out;
  // Ping sockets for the nodes' NAT to relay echo requests with (per lab namespace; a server reads
  // the setting as it starts), then all three nodes on a fresh database.
  for (const n of f.nodes) await step(() => n.ns.sysctl('net.ipv4.ping_group_range', '0 2147483647'));
  await step(() => startVariant(f, 'pg-3', 0));
  await step(() => addFleetServer(f));
  for (let round = 1; round <= opts.failoverRounds; round++) {
    for (const r of opts.reresolve) {
      const x = await step(() => failoverRound(f, r));
      out.push(x);
      log(
        `failover round ${round}, --reresolve-after ${r ?? 'default'}: first reply ${(x.killToReply / 1000).toFixed(2)} s after the kill ` +
          `(moved to ${x.movedToNode} at ${(x.killToMove / 1000).toFixed(2)} s, after ${x.unansweredS} s of unanswered handshakes)`,
      );
    }
  }
  await step(() => stopNodes(f.nodes));
  return out;
}

const run: FleetBenchRun = { machine, pgVersion: '', options: opts, registrations: [], failovers: [], elapsed: 0 };
try {
  const lab = session.newLab();
  log(`building the fleet lab ${lab.id} (three node namespaces, a durable PostgreSQL cluster)`);
  const f = await step(() => fleetLab(lab, 3, { durable: true }));
  run.pgVersion = (await step(() => f.pg.psql('postgres', 'SHOW server_version'))).trim();
  run.registrations = await registrations(f);
  run.failovers = await failovers(f);
} finally {
  await session.teardownAll();
}
machine.loadEnd = os.loadavg();
run.elapsed = (Date.now() - session.started) / 1000;
const report = renderFleetReport(run);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'fleet.md'), report);
console.log(report);
log(`wrote ${join(outDir, 'fleet.md')}`);
