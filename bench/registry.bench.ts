// Registry bench: registrations per second through the store itself (no HTTP,
// no WireGuard), for the choice between the stores and the size of a fleet's
// registry. Each variant registers new keys for a fixed time into a fresh
// registry (a /16 pool, so it never fills): SQLite (one file, as one server
// uses it), PostgreSQL with one node, and PostgreSQL with three nodes (three
// PostgresRegistry instances, three pools, like three wirecagesrv) at once.
// Every node keeps `--inflight` registrations outstanding, as concurrent API
// requests would. PostgreSQL is the lab's throwaway cluster on a unix socket,
// durable as a production server is (fsync, synchronous_commit), as SQLite's
// file is (synchronous=FULL): both sync every registration to the same disk.
// Writes bench/results/registry.md and prints it. Run as root (the lab cluster
// runs as a system user it makes).
//
//   node --import tsx registry.bench.ts [--duration S] [--rounds N] [--inflight N] [--out DIR]
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLabPostgres, type LabPostgres } from '@wirecage/netns/lab';
import { PostgresRegistry } from '../apps/wirecagesrv/src/registry/postgres/registry.js';
import { SqliteRegistry } from '../apps/wirecagesrv/src/registry/sqlite/registry.js';
import type { Registry } from '../apps/wirecagesrv/src/registry/types.js';
import { table } from './lib/markdown.js';
import { wholeNumber } from './lib/whole-number.js';

const USAGE = 'usage: registry.bench.ts [--duration S] [--rounds N] [--inflight N] [--out DIR]';

function options() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { duration: { type: 'string' }, rounds: { type: 'string' }, inflight: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  const whole = (name: string, text: string) => wholeNumber(name, text, 1, USAGE);
  return {
    duration: whole('--duration', values.duration ?? '5'),
    rounds: whole('--rounds', values.rounds ?? '3'),
    inflight: whole('--inflight', values.inflight ?? '8'),
    outDir: values.out ?? fileURLToPath(new URL('./results/', import.meta.url)),
  };
}

interface Variant {
  id: string;
  label: string;
  nodes: number;
  open(node: string, location: string): Promise<Registry>;
  location(): Promise<string>;
}

interface Run {
  variant: string;
  perSecond: number;
  registered: number;
  /** Slowest registration seen, ms. */
  worstMs: number;
}

// The store takes a key as given (the API checks it): 32 random bytes cost no curve arithmetic.
const newKey = () => randomBytes(32).toString('base64');

/** Every node registers new keys, `inflight` at a time each, until `seconds` are up. */
async function measure(v: Variant, seconds: number, inflight: number): Promise<Omit<Run, 'variant'>> {
  const location = await v.location();
  const nodes: Registry[] = [];
  for (let i = 1; i <= v.nodes; i++) nodes.push(await v.open(`node${i}`, location));
  let worst = 0;
  const end = Date.now() + seconds * 1000;
  const worker = async (r: Registry) => {
    while (Date.now() < end) {
      const key = newKey();
      const t0 = performance.now();
      await r.register(key);
      worst = Math.max(worst, performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(nodes.flatMap((r) => Array.from({ length: inflight }, () => worker(r))));
  const elapsed = (performance.now() - t0) / 1000;
  const registered = await nodes[0]!.count();
  if (new Set((await nodes[0]!.list()).map((p) => p.address4)).size !== registered) throw new Error(`${v.id}: two peers share an address`);
  await Promise.all(nodes.map((r) => r.close()));
  return { perSecond: registered / elapsed, registered, worstMs: worst };
}

function variants(pgLab: LabPostgres, tmp: string): Variant[] {
  let n = 0;
  const pgLocation = () => pgLab.createDatabase(`bench_${n++}`);
  const pgOpen = (node: string, location: string) => PostgresRegistry.open({ location, node, subnet: '10.64.0.0/16' });
  return [
    {
      id: 'sqlite',
      label: 'SQLite (one server)',
      nodes: 1,
      location: () => Promise.resolve(join(tmp, `registry-${n++}.db`)),
      open: (node, location) => SqliteRegistry.open({ location, node, subnet: '10.64.0.0/16' }),
    },
    { id: 'pg-1', label: 'PostgreSQL, one node', nodes: 1, location: pgLocation, open: pgOpen },
    { id: 'pg-3', label: 'PostgreSQL, three nodes at once', nodes: 3, location: pgLocation, open: pgOpen },
  ];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function report(
  runs: Run[],
  vs: Variant[],
  opts: ReturnType<typeof options>,
  load: { start: number[]; end: number[] },
  pgVersion: string,
): string {
  const rows = vs.map((v) => {
    const mine = runs.filter((r) => r.variant === v.id);
    const rates = mine.map((r) => r.perSecond);
    const range = rates.length > 1 ? ` (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})` : '';
    return [
      v.label,
      String(v.nodes * opts.inflight),
      `${median(rates).toFixed(0)}${range}`,
      median(mine.map((r) => r.registered)).toFixed(0),
      `${Math.max(...mine.map((r) => r.worstMs)).toFixed(1)}`,
    ];
  });
  const busy = load.start[0]! > os.availableParallelism() * 0.5 || load.end[0]! > os.availableParallelism() + 2;
  return [
    '# Registrations per second, by store',
    '',
    `One run of \`node --import tsx registry.bench.ts\` (bench/): new keys registered through the store itself (\`Registry.register\`, no HTTP, no WireGuard) for ${opts.duration} s into a fresh registry with a /16 pool, ${opts.rounds} rounds per variant; figures are the median of the rounds (range in parentheses). Each node keeps ${opts.inflight} registrations in flight. "Three nodes" are three PostgresRegistry instances with a pool each, as three wirecagesrv would be, registering at the same time into one database; every registration takes the same advisory lock, so they are serialized across the fleet. PostgreSQL is the lab's throwaway cluster on a unix socket, with fsync and synchronous_commit on as a production server has them, and SQLite a file with synchronous=FULL: both sync every registration to the same disk before answering.`,
    '',
    ...(busy
      ? [
          `**The machine was busy during this run** (1-minute load average ${load.start[0]!.toFixed(2)} at start and ${load.end[0]!.toFixed(2)} at end on ${os.availableParallelism()} CPUs, other work included): the absolute numbers are low.`,
          '',
        ]
      : []),
    ...table(['store', 'registrations in flight', 'registrations/s', 'peers at the end', 'slowest (ms)'], rows),
    '',
    '## Machine',
    '',
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- nproc: ${os.availableParallelism()} (${os.cpus()[0]?.model ?? 'unknown CPU'}); kernel ${os.type()} ${os.release()}; node ${process.version}`,
    `- load average (1, 5, 15 min): ${load.start.map((l) => l.toFixed(2)).join(', ')} at start, ${load.end.map((l) => l.toFixed(2)).join(', ')} at end`,
    `- PostgreSQL: ${pgVersion}`,
    '',
  ].join('\n');
}

let opts: ReturnType<typeof options>;
try {
  opts = options();
} catch (e) {
  process.stderr.write(`registry bench: ${(e as Error).message}\n`);
  process.exit(2);
}
const load = { start: os.loadavg(), end: [] as number[] };
const pgLab = await startLabPostgres({ durable: true });
const tmp = mkdtempSync(join(os.tmpdir(), 'wirecage-registry-bench-'));
try {
  const vs = variants(pgLab, tmp);
  const runs: Run[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const v of vs) {
      const run = { variant: v.id, ...(await measure(v, opts.duration, opts.inflight)) };
      runs.push(run);
      process.stderr.write(`round ${round} ${v.label}: ${run.perSecond.toFixed(0)} registrations/s (${run.registered} peers)\n`);
    }
  }
  load.end = os.loadavg();
  const pgVersion = (await pgLab.psql('postgres', 'SHOW server_version')).trim();
  const md = report(runs, vs, opts, load, pgVersion);
  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(join(opts.outDir, 'registry.md'), md);
  process.stdout.write(md);
} finally {
  rmSync(tmp, { recursive: true, force: true });
  await pgLab.stop();
}
