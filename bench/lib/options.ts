// Command-line options of the data-plane bench. Flags win over the BENCH_*
// environment variables, which exist so `npm run bench` (no way to pass
// flags through turbo) can still be tuned.
import { parseArgs } from 'node:util';
import { wholeNumber } from './whole-number.js';

export const PAIRS = ['wg-wg', 'cage-wg', 'cage-cage', 'eng-wg'] as const;
/** Run when --only names none: the engine without the cage is asked for by name. */
export const DEFAULT_PAIRS: readonly PairName[] = ['wg-wg', 'cage-wg', 'cage-cage'];
export type PairName = (typeof PAIRS)[number];

export interface BenchOptions {
  /** Seconds per iperf3 run. */
  duration: number;
  /** Each test runs this many times per pair; the run with the median throughput is the one reported. */
  rounds: number;
  pairs: PairName[];
  /** Passed to `wirecage run --workers` when that flag exists; null leaves the engine's default. */
  workers: number | null;
  /** iperf3 -b for the UDP test; '0' is unlimited. */
  udpBitrate: string;
  pings: number;
  /** Directory for dataplane.md and dataplane.svg. */
  outDir: string;
}

export const USAGE = `usage: dataplane.bench.ts [--duration S] [--rounds N] [--only PAIR[,PAIR...]] [--workers N] [--udp-bitrate RATE] [--pings N] [--out DIR]
  PAIR is one of ${PAIRS.join(', ')} (wg-wg is the anchor every ratio is taken against;
  eng-wg runs wg-engine without the cage, wired by the same attachDevice, and only when named).
  Environment fallbacks: BENCH_DURATION, BENCH_ROUNDS, BENCH_ONLY, BENCH_WORKERS, BENCH_UDP_BITRATE, BENCH_PINGS.`;

const positiveInt = (name: string, text: string) => wholeNumber(name, text, 1, USAGE);

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv, defaultOutDir: string): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      workers: { type: 'string' },
      'udp-bitrate': { type: 'string' },
      pings: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = values.only ?? env.BENCH_ONLY;
  const pairs = only === undefined || only === '' ? [...DEFAULT_PAIRS] : only.split(',').map((p) => p.trim());
  for (const p of pairs) {
    if (!(PAIRS as readonly string[]).includes(p))
      throw new Error(`--only: unknown pair ${JSON.stringify(p)}; pairs are ${PAIRS.join(', ')}`);
  }
  const workers = values.workers ?? env.BENCH_WORKERS;
  const udpBitrate = values['udp-bitrate'] ?? env.BENCH_UDP_BITRATE ?? '0';
  if (!/^\d+(\.\d+)?[KMG]?$/.test(udpBitrate))
    throw new Error(`--udp-bitrate must look like iperf3's -b (0, 500M, 2G), got ${JSON.stringify(udpBitrate)}`);
  return {
    duration: positiveInt('--duration', values.duration ?? env.BENCH_DURATION ?? '5'),
    rounds: positiveInt('--rounds', values.rounds ?? env.BENCH_ROUNDS ?? '3'),
    // Keep the bench's own order whatever order --only named them in: the anchor first.
    pairs: PAIRS.filter((p) => pairs.includes(p)),
    workers: workers === undefined || workers === '' ? null : wholeNumber('--workers', workers, 0, USAGE),
    udpBitrate,
    pings: positiveInt('--pings', values.pings ?? env.BENCH_PINGS ?? '50'),
    outDir: values.out ?? defaultOutDir,
  };
}
