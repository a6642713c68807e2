// bench/results/fleet.md: registrations per second through the HTTP API for
// one node on SQLite, one on PostgreSQL and three on one PostgreSQL; the time
// a cage takes to get traffic through another node once its node is killed;
// what each figure is made of, and the machine.
import type { MachineInfo } from './machine.js';
import { busyNote, machineSection, table } from './markdown.js';
import { DEFAULT_RERESOLVE_S, PING_INTERVAL_S, SILENT_PEER_S, type FailoverRound } from './fleet-failover.js';
import { REG_VARIANTS, ROUND_CAP, type RegRound } from './fleet-register.js';

export interface FleetBenchRun {
  machine: MachineInfo;
  pgVersion: string;
  options: { seconds: number; rounds: number; concurrency: number; failoverRounds: number; reresolve: (number | null)[] };
  registrations: RegRound[];
  failovers: FailoverRound[];
  elapsed: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** `median (min–max)` of `xs`, each formatted by `fmt`; the range only with several values. */
function spreadOf(xs: number[], fmt: (x: number) => string): string {
  if (xs.length === 0) return '–';
  if (xs.length === 1) return fmt(xs[0]!);
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const sec = (ms: number) => (ms / 1000).toFixed(1);

/** One row per setup: the medians and ranges of its rounds. */
function registrationRows(run: FleetBenchRun): string[][] {
  const { concurrency } = run.options;
  return REG_VARIANTS.map((v) => {
    const mine = run.registrations.filter((r) => r.variant === v.id);
    const failed = mine.reduce((a, r) => a + r.failed, 0);
    return [
      v.label,
      String(v.nodes * concurrency),
      `**${spreadOf(
        mine.map((r) => r.perSecond),
        int,
      )}**`,
      spreadOf(
        mine.map((r) => r.ok),
        int,
      ),
      mine.length ? mine.map((r) => r.perNode.join(' / ')).join('; ') : '–',
      failed === 0 ? '0' : `${failed} (${mine.find((r) => r.firstError)?.firstError ?? ''})`,
      spreadOf(
        mine.map((r) => r.nodeCpuMs),
        (x) => x.toFixed(1),
      ),
      v.id === 'sqlite'
        ? '–'
        : spreadOf(
            mine.map((r) => r.pgCpuMs ?? 0),
            (x) => x.toFixed(1),
          ),
      spreadOf(
        mine.map((r) => r.clientCpu / r.seconds),
        (x) => `${(x * 100).toFixed(0)} %`,
      ),
    ];
  });
}

function registrationSection(run: FleetBenchRun): string[] {
  const { seconds, rounds, concurrency } = run.options;
  const rows = registrationRows(run);
  return [
    '## Registrations per second through the API',
    '',
    `\`POST /v1/register\` with a fresh random key each, ${concurrency} requests in flight per node over keep-alive connections, ` +
      `for ${seconds} s or ${ROUND_CAP.toLocaleString('en-US')} registrations per round (whichever comes first), ${rounds} round${rounds === 1 ? '' : 's'} per setup, ` +
      'the setups taking turns within each round; each round starts on a fresh, empty registry. Median over the rounds, lowest–highest in parentheses.',
    '',
    ...table(
      [
        'setup',
        'in flight',
        'registrations/s',
        'registered per round',
        'answered per node, each round',
        'failed',
        'nodes’ CPU ms per registration',
        'PostgreSQL’s CPU ms per registration',
        "load generator's CPU",
      ],
      rows,
    ),
    '',
    `Every round checked: each answer's IPv4 (and IPv6) address differs from every other answer's, and the registry (\`GET /v1/peers\`) holds exactly the keys answered, with the address each was given.`,
    '',
    "CPU per registration: user + system time of every process of the setup's nodes (stage 1, its helper, stage 2), and of the PostgreSQL cluster (the postmaster and its backends), read from /proc before and after the round, divided by the registrations answered. " +
      "Every new registration on PostgreSQL holds the fleet's one advisory lock from its look-up of the lowest free address to its commit, the disk sync included, so registrations are serialized across the fleet whatever the number of nodes: more nodes add no registration capacity: they share the API's work, and registrations go on when one of them dies.",
    '',
    ...threeNodeNote(run),
    ...capNote(run.registrations),
  ];
}

/** Why three nodes register fewer per second than one, as far as this run's figures tell. */
function threeNodeNote(run: FleetBenchRun): string[] {
  const rate = (id: string) => median(run.registrations.filter((r) => r.variant === id).map((r) => r.perSecond));
  const three = run.registrations.filter((r) => r.variant === 'pg-3');
  if (three.length === 0 || rate('pg-3') >= rate('pg-1')) return [];
  // CPUs kept busy by the three nodes and PostgreSQL together during the round.
  const cpus = median(three.map((r) => ((r.nodeCpuMs + (r.pgCpuMs ?? 0)) * r.perSecond) / 1000));
  const n = run.machine.nproc;
  const head = `Three nodes register ${(rate('pg-3') / rate('pg-1')).toFixed(2)}× as many per second as one. The three nodes and PostgreSQL together kept ${cpus.toFixed(2)} of the machine's ${n} CPUs busy`;
  if (cpus > n * 0.75)
    return [
      `${head}: the machine's CPUs are the limit here, and three nodes need more of them per registration (each puts every peer on its own device).`,
      '',
    ];
  return [
    `${head}, so it is not their CPU time that limits them. The likely cost: the lock holder is one of more processes to schedule (three stage 2s, their pools' backends, the other nodes applying each change they hear of), and every wait it has for a CPU is the whole fleet's; on a loaded machine that shows most. ` +
      'A quieter or larger machine tells how much of it remains; the store-level bench, without HTTP or WireGuard, points the same way ([registry.md](registry.md)).',
    '',
  ];
}

/** Rounds that stopped at the cap rather than the clock: their rate is as good, their time shorter. */
function capNote(rounds: RegRound[]): string[] {
  const capped = rounds.filter((r) => r.ok + r.failed >= ROUND_CAP);
  if (capped.length === 0) return [];
  return [
    `${capped.length} of ${rounds.length} rounds reached the cap of ${ROUND_CAP.toLocaleString('en-US')} registrations (the lab's pool holds 2,000 peers) before the clock, in ${capped.map((r) => `${r.seconds.toFixed(1)} s`).join(', ')}.`,
    '',
  ];
}

function failoverSection(run: FleetBenchRun): string[] {
  const rows = run.options.reresolve.map((r) => {
    const mine = run.failovers.filter((x) => x.reresolveAfter === r);
    const moved = [...new Set(mine.map((x) => x.movedToNode))].join(', ') || '–';
    return [
      r === null ? `default (${DEFAULT_RERESOLVE_S} s)` : `${r} s`,
      String(mine.length),
      `**${spreadOf(
        mine.map((x) => x.killToReply),
        sec,
      )} s**`,
      `${spreadOf(
        mine.map((x) => x.killToMove),
        sec,
      )} s`,
      `${spreadOf(
        mine.map((x) => x.unansweredS * 1000),
        sec,
      )} s`,
      moved,
    ];
  });
  return [
    '## Failover: a node killed under a cage',
    '',
    `A cage (\`wirecage run fleet -- ping -D -i ${PING_INTERVAL_S} <lab host>\`, registered through node 1, so its answer lists node 1's endpoint first) pings the lab's internet host through node 1's NAT; ` +
      "node 1's whole process group gets SIGKILL (a machine that dies: no goodbye to anyone); the time is from the kill to the first echo reply after it, which can only have come through another node. " +
      'A fresh cage per round; node 1 is started again between rounds.',
    '',
    ...table(
      [
        '--reresolve-after',
        'rounds',
        '**kill → first reply through another node**',
        'kill → the cage moves',
        'handshakes unanswered when it moved',
        'moved to',
      ],
      rows,
    ),
    '',
    'What the time is made of:',
    '',
    `1. **${SILENT_PEER_S} s until the client notices.** Nothing tells a WireGuard peer that the other end died: the cage goes on sending pings into the dead node's session, and only once it has sent for Keepalive-Timeout (10 s) + Rekey-Timeout (5 s) without hearing anything back does it start a new handshake (the protocol's passive detection). The handshake goes to node 1 again and is not answered; it is retried every Rekey-Timeout (5 s).`,
    `2. **--reresolve-after.** The cage moves the peer only after its handshakes have gone unanswered for that long (counted from the first unanswered initiation, checked every 1 s at the default period and every 0.25 s at 2 s: \`max(0.25 s, min(1 s, period ÷ 8))\`). The column "handshakes unanswered when it moved" is the cage's own count of that wait (whole seconds).`,
    `3. **The move itself:** the cage points the peer at the answer's next endpoint (node 2), starts a handshake at once, node 2 answers (it holds the peer already: every node's device holds every peer), and the next ping (at most ${PING_INTERVAL_S} s later) gets its reply. The difference between the two timed columns is this part plus the 100 ms polling of the cage's log.`,
    '',
    `So kill → reply ≈ up to ${PING_INTERVAL_S} s (the last ping before the kill) + ${SILENT_PEER_S} s + --reresolve-after + a tick + one handshake. Shortening --reresolve-after is the only lever on the client; the ${SILENT_PEER_S} s are WireGuard's and the same for any client. Only the tunnel moves: the caged program keeps its sockets (ping never restarts); the flows the dead node had NATed end with it (a TCP connection through it breaks), while new ones, and ping's next echo requests, are NATed by the node the cage moved to.`,
    '',
  ];
}

export function renderFleetReport(run: FleetBenchRun): string {
  const m = run.machine;
  const o = run.options;
  const busy = busyNote(m);
  return [
    '# Fleet: registrations per second and failover',
    '',
    `One run of \`npm run bench:fleet -w bench -- ${commandFlags(o)}\` on ${m.date.slice(0, 10)}, ` +
      "in the fleet lab of the tests (tests/lib/srv-fleet.ts): real `wirecagesrv up` processes, each in a lab namespace of its own, the client in another, PostgreSQL the lab's own cluster. " +
      'The machine is shared: read the ratios between setups of the same run before the absolute figures.',
    '',
    ...(busy === null ? [] : [busy, '']),
    ...registrationSection(run),
    ...failoverSection(run),
    ...howSection(run),
    ...machineSection(m).slice(0, -1),
    `- PostgreSQL: ${run.pgVersion}`,
    '',
  ].join('\n');
}

function commandFlags(o: FleetBenchRun['options']): string {
  const reresolve = o.reresolve.map((r) => r ?? 'default').join(',');
  return `--seconds ${o.seconds} --rounds ${o.rounds} --concurrency ${o.concurrency} --failover-rounds ${o.failoverRounds} --reresolve ${reresolve}`;
}

function howSection(run: FleetBenchRun): string[] {
  return [
    '## How it was measured',
    '',
    "- Lab: namespaces `cli` (the load generator and the cage), `node1`–`node3` (one `wirecagesrv up` each, its API and WireGuard on its veth from `cli`) and `inet` (the internet host 10.99.1.2, reached by each node over a /30 of its own). Nothing runs in the machine's own network namespace; the lab is torn down at the end, on failure and on Ctrl-C.",
    "- Every node: `--subnet 10.200.96.0/21 --max-peers 2000 --register-rate 100000` (the per-source registration limit out of the load's way, as only a load test should), `--workers 0` (the data plane inline: the nodes share the machine's CPUs with each other and with the client), one shared private key, `--log-level` at its default. " +
      'PostgreSQL nodes: `--registry-url-file` (one database for the fleet, fresh per round), `--node-name nodeN`. SQLite: `--state` (a fresh file per round).',
    "- Durability is the same on both: SQLite commits with synchronous=FULL, the PostgreSQL cluster runs with fsync and synchronous_commit on (a production server's settings); each answered registration is on disk first.",
    "- What a registration costs a node: the API's checks, an address allocated under the registry's lock (across the fleet on PostgreSQL: one advisory lock, so the fleet's registrations are serialized), the commit, the peer on its WireGuard device; on PostgreSQL every other node then hears of it (LISTEN/NOTIFY) and puts it on its own device, so three nodes do three devices' work per registration.",
    '- The load generator (bench/lib/fleet-load.mjs) is one Node process in `cli`; its CPU share is in the table, since on two CPUs it competes with the servers.',
    `- Store-level figures without HTTP or WireGuard: [registry.md](registry.md).`,
    `- Whole run: ${run.elapsed.toFixed(0)} s.`,
    '',
  ];
}
