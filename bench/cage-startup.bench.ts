// Cage start-up: wall time of `wirecage run -c lab.conf -- true` (namespaces,
// TUN, handshake with a wireguard-go server and the command included) next to
// `node -e 0` and `unshare -Urn true` in the same run, median of 20, the CPU
// time (user+sys of the whole process tree, steadier than wall time on a busy
// machine) and the peak RSS of the largest wirecage process. It runs the
// checkout's bin/run.js, which has no oclif.manifest.json (an installed
// package has one): `run` skips oclif's start-up in both (src/fast-run.ts), and
// the build bundles it and stage 2 (scripts/bundle.mjs). The lab lives in its own
// namespaces. With --baseline DIR the same cage start-up with DIR's built CLI
// is timed too. The commands take turns, one run each per round (the order
// rotating), so a change in the machine's load between them lands on all
// alike; the difference is the median of each round's difference.
//
//   node --import tsx cage-startup.bench.ts [--baseline DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Lab, type Netns } from '@wirecage/tests/lib/netns.js';
import { generateKeyPair } from '@wirecage/tests/lib/wg.js';
import { startWireguardGo } from '@wirecage/tests/lib/wireguard-go.js';
import { machineInfo } from './lib/machine.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLI = 'packages/cli/bin/run.js';

const USAGE = `usage: node --import tsx cage-startup.bench.ts [--baseline DIR]
  --baseline DIR   also time DIR/${CLI} (another built checkout, e.g. a git worktree
                   of the parent commit), taking turns with this checkout's, and report
                   the median of the per-round differences
Environment: BENCH_RUNS (runs per command, default 20). Writes bench/results/cage-startup.md.`;

function usageError(text: string): never {
  process.stderr.write(`cage-startup bench: ${text}\n${USAGE}\n`);
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: { baseline: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
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

/** The baseline checkout, checked now so a bad path fails before the lab is built. */
function baselineDir(dir: string | undefined): string | null {
  if (dir === undefined) return null;
  const abs = resolve(dir);
  if (!existsSync(join(abs, CLI))) usageError(`--baseline: ${join(abs, CLI)} does not exist`);
  // bin/run.js loads the compiled commands: without a build it would fail in every run and time nothing.
  if (!existsSync(join(abs, 'packages/cli/dist/commands/run.js')))
    usageError(`--baseline: ${abs} is not built (run \`npm ci && npm run build\` there)`);
  return abs;
}
const baseline = baselineDir(args.baseline);

interface Timed {
  median: number;
  min: number;
  max: number;
  /** Every run, in seconds, one per round. */
  runs: number[];
  /** Median CPU time (user+sys of the process tree), in seconds. */
  cpu: number;
}

/** `wirecage run -c CONF -- true` with the CLI of the checkout at `repo`, as argv. */
const cageArgv = (repo: string, conf: string) => [process.execPath, join(repo, CLI), 'run', '-c', conf, '--', 'true'];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Wall and CPU time of one run of `argv` in `ns`, in seconds; a failed run fails the bench. GNU
 * time reports the CPU time of the tree it waited for (its own fork and exec, the same in every
 * command, are in the wall time too).
 */
function timeOnce(ns: Netns, argv: string[]): { wall: number; cpu: number } {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', 'nsenter', `--net=/run/netns/${ns.name}`, '--', ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status}: ${r.stderr.toString()}`);
  const m = /^cpu (\S+) (\S+)$/m.exec(r.stderr.toString());
  if (!m) throw new Error(`no CPU time from /usr/bin/time for ${argv.join(' ')}: ${r.stderr.toString()}`);
  return { wall, cpu: Number(m[1]) + Number(m[2]) };
}

/** Every command once per round, the order rotating from round to round, after two warm-up rounds; results in input order. */
function takeTurns(ns: Netns, commands: string[][]): Timed[] {
  const runs: number[][] = commands.map(() => []);
  const cpus: number[][] = commands.map(() => []);
  for (let round = -2; round < RUNS; round++) {
    for (let k = 0; k < commands.length; k++) {
      const i = (k + Math.max(round, 0)) % commands.length;
      const t = timeOnce(ns, commands[i]!);
      if (round >= 0) {
        runs[i]!.push(t.wall);
        cpus[i]!.push(t.cpu);
      }
    }
  }
  return runs.map((r, i) => ({ median: median(r), min: Math.min(...r), max: Math.max(...r), runs: r, cpu: median(cpus[i]!) }));
}

/** Peak RSS in MiB of the largest process of the command's tree (GNU time's %M is the maxrss of the children). */
async function peakRssMiB(ns: Netns, argv: string[]): Promise<number> {
  const out = await ns.runOrThrow('/usr/bin/time', ['-f', '%M', ...argv]);
  return Number(out.stderr.trim().split('\n').pop()) / 1024;
}

const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
const row = (label: string, t: Timed) => `| ${label} | ${ms(t.median)} | ${ms(t.min)} | ${ms(t.max)} | ${ms(t.cpu)} |`;
/** Commit of a checkout as the data-plane report names it (uncommitted changes in packages/ noted). */
const commitOf = (repo: string) => machineInfo(repo).commit;

function report(timed: Timed[], rss: number[]): string {
  // Order: this checkout, the baseline when there is one, then the anchors.
  const w = timed[0];
  const b = baseline === null ? undefined : timed[1];
  const [n, u] = timed.slice(-2) as [Timed, Timed];
  const lines = [
    `Cage start-up, ${RUNS} runs each, taking turns, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| command | median | min | max | CPU (user+sys), median |',
    '|---|---|---|---|---|',
  ];
  if (b === undefined) {
    lines.push(row('`wirecage run -c lab.conf -- true` (handshake included)', w!));
  } else {
    lines.push(row(`\`wirecage run -c lab.conf -- true\` (handshake included), this checkout at ${commitOf(REPO)}`, w!));
    lines.push(row(`\`wirecage run -c lab.conf -- true\` (handshake included), baseline at ${commitOf(baseline!)}, ${baseline}`, b));
  }
  lines.push(row('`node -e 0`', n), row('`unshare -Urn true`', u), '');
  // The start-up goal is a multiple of a bare Node start on the same machine (README, "Cage start-up").
  lines.push(
    `This checkout's median is ${(w!.median / n.median).toFixed(1)}x that of \`node -e 0\` (CPU time: ${(w!.cpu / n.cpu).toFixed(1)}x).`,
    '',
  );
  if (b !== undefined) {
    const diffs = w!.runs.map((t, i) => (t - b.runs[i]!) * 1000);
    const d = median(diffs);
    lines.push(
      `This checkout − baseline, median of the ${RUNS} rounds' differences: ${d >= 0 ? '+' : ''}${d.toFixed(1)} ms ` +
        `(difference of the medians: ${((w!.median - b.median) * 1000).toFixed(1)} ms).`,
      '',
    );
  }
  const baselineRss = rss[1] === undefined ? '' : ` (baseline: ${rss[1].toFixed(0)} MiB)`;
  lines.push(`Peak RSS of the largest wirecage process: ${rss[0]!.toFixed(0)} MiB${baselineRss}.`, '');
  return lines.join('\n');
}

const lab = new Lab();
try {
  const cli = await lab.namespace('cli');
  const srv = await lab.namespace('srv');
  const link = await lab.veth(cli, srv);
  const dir = await lab.tempDir();
  const client = await generateKeyPair(dir, 'client');
  const go = await startWireguardGo(srv, {
    addresses: ['10.201.0.1/24'],
    peers: [{ publicKey: client.publicKey, allowedIps: ['10.201.0.2/32'] }],
  });
  const conf = join(dir, 'lab.conf');
  writeFileSync(
    conf,
    `[Interface]\nPrivateKey = ${readFileSync(client.privateKeyFile, 'utf8').trim()}\nAddress = 10.201.0.2/32\nDNS = 10.201.0.1\n\n` +
      `[Peer]\nPublicKey = ${go.publicKey}\nEndpoint = ${go.endpoint(link.b.v4!)}\nAllowedIPs = 10.201.0.0/24\n`,
    { mode: 0o600 },
  );
  const cages = [REPO, ...(baseline === null ? [] : [baseline])].map((repo) => cageArgv(repo, conf));
  const timed = takeTurns(cli, [...cages, [process.execPath, '-e', '0'], ['unshare', '-Urn', 'true']]);
  const rss: number[] = [];
  for (const argv of cages) rss.push(await peakRssMiB(cli, argv));
  const table = report(timed, rss);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/cage-startup.md', import.meta.url), table);
  console.log(table);
} finally {
  await lab.teardown();
}
