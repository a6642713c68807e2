// bench/results/server.md: throughput through each server with ratios to
// the anchor (wireguard-go + nft masquerade), server CPU per GB,
// registrations per second, memory per 1,000 peers, then how and on what.
import type { MachineInfo } from './machine.js';
import { busyNote, machineSection, s2, spread, table, times } from './markdown.js';
import type { TransferResult } from './measure.js';
import { cpuPerGB, ratio } from './results.js';
import { ANCHOR_SETUP, SETUP_TITLES, type ServerSetup } from './server-labs.js';
import { SERVER_TESTS, type LoadResult, type ServerTestId } from './server-measure.js';

export interface SetupResult {
  setup: ServerSetup;
  rounds: Partial<Record<ServerTestId, TransferResult[]>>;
  /** Per test, the round with the median throughput. */
  transfers: Partial<Record<ServerTestId, TransferResult>>;
}

export interface LoadRun {
  label: string;
  registrations: LoadResult & { concurrency: number; perSecond: number };
  /** VmRSS of stage 2 in bytes; `rates`: registrations per second for the first 1,000 and the next 4,000. */
  memory: { base: number; after1k: number; after5k: number; perThousand: number; rates: [number, number] };
}

export interface ServerBenchRun {
  machine: MachineInfo;
  duration: number;
  rounds: number;
  setups: SetupResult[];
  /** Registrations and memory, per server variant (default workers, --workers 0). */
  load: LoadRun[];
  elapsed: number;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

export function bps(run: ServerBenchRun, setup: ServerSetup, test: ServerTestId): number | undefined {
  return run.setups.find((s) => s.setup === setup)?.transfers[test]?.bitsPerSecond;
}

export function renderServerReport(run: ServerBenchRun): string {
  const m = run.machine;
  const lines: string[] = [];
  lines.push('# Server: wirecagesrv against wireguard-go + kernel masquerade', '');
  lines.push(
    `One run of \`npm run bench:server -w bench\` on ${m.date.slice(0, 10)}: a cage (\`wirecage run\`) sends through a server to a lab host, ` +
      `${run.rounds} round${run.rounds === 1 ? '' : 's'} of ${run.duration} s iperf3 runs per server and direction, interleaved so the runs compared are seconds apart ` +
      '(per server and test the median round is reported, the lowest and highest in parentheses). The servers differ, the cage is the same. ' +
      'Absolute numbers move with the machine (it is shared); the ratios to wireguard-go + nft masquerade measured in the same run are the headline.',
    '',
  );
  const busy = busyNote(m);
  if (busy !== null) lines.push(busy, '');

  lines.push('## Throughput', '', 'Payload Gbit/s at the receiving iperf3; × is the ratio to the anchor.', '');
  const spreadOf = (s: SetupResult, t: ServerTestId) => spread(s.transfers[t]?.bitsPerSecond, s.rounds[t]);
  const header = [
    'test',
    ...run.setups.flatMap((s) => (s.setup === ANCHOR_SETUP ? [`${SETUP_TITLES[s.setup]} (anchor)`] : [SETUP_TITLES[s.setup], '×'])),
  ];
  lines.push(
    ...table(
      header,
      SERVER_TESTS.map((t) => {
        const id = t.id as ServerTestId;
        const title = id === 'tcp' ? 'TCP, 1 stream, cage → lab host' : 'TCP, 1 stream, lab host → cage (-R)';
        return [
          title,
          ...run.setups.flatMap((s) =>
            s.setup === ANCHOR_SETUP
              ? [spreadOf(s, id)]
              : [spreadOf(s, id), times(ratio(bps(run, s.setup, id), bps(run, ANCHOR_SETUP, id)))],
          ),
        ];
      }),
    ),
    '',
  );

  lines.push(
    '## CPU per GB',
    '',
    'CPU seconds (user + system, all threads) of the server process (wirecagesrv’s stage 2, or wireguard-go) and of the cage’s stage 2 during the median run, per 10⁹ payload bytes. ' +
      'Kernel work is charged to whichever task runs when it happens: what a TUN write sets off (the userspace NAT’s TCP stack; with --nat kernel forwarding, masquerade and even the lab host’s receive across the veth) ' +
      'mostly lands on the server process as system time, while packets arriving from the veth are handled in softirq and may be charged to no process. Read these as indications, not as each server’s full cost.',
    '',
  );
  const cpuRows: string[][] = [];
  for (const t of SERVER_TESTS) {
    const id = t.id as ServerTestId;
    for (const s of run.setups) {
      const tr = s.transfers[id];
      const server = tr && cpuPerGB(tr.cpu.right, tr.bytes);
      const anchor = run.setups.find((a) => a.setup === ANCHOR_SETUP)?.transfers[id];
      cpuRows.push([
        id,
        SETUP_TITLES[s.setup],
        s2(server),
        s.setup === ANCHOR_SETUP ? '' : times(ratio(server, anchor && cpuPerGB(anchor.cpu.right, anchor.bytes))),
        s2(tr && cpuPerGB(tr.cpu.left, tr.bytes)),
      ]);
    }
  }
  lines.push(...table(['test', 'server', 'server s/GB', 'server × anchor', 'cage s/GB'], cpuRows), '');

  lines.push('## Registrations and memory per 1,000 peers', '');
  if (run.load.length === 0) lines.push('Not measured.', '');
  else {
    const c = run.load[0]!.registrations.concurrency;
    lines.push(
      `Registrations: \`POST /v1/register\` with a fresh random key each, over ${c} keep-alive connections from the lab's client namespace for 5 s, ` +
        'to a fresh server in its own lab namespace (`--register-rate 1000000`, so the per-source limit stays out of the way; `--log-level warn`). ' +
        'Every answered registration is committed to the SQLite registry (WAL, synchronous=FULL, in the OS temp dir) and put on the WireGuard device. ' +
        'Memory: VmRSS of stage 2 (registry, API, WireGuard device and its data-plane workers) of another fresh server (`--max-peers 6000`) with no peer, ' +
        'after 1,000 registrations and after 5,000, read 2 s after each batch; per 1,000 = (5,000 − 1,000 figure) ÷ 4, MB = 10⁶ bytes. ' +
        'Peers that never shake hands hold no sessions; a live session adds its keypairs and replay state.',
      '',
    );
    lines.push(
      ...table(
        [
          'server',
          'registrations/s (5 s)',
          'failed',
          'VmRSS empty',
          'at 1,000',
          'at 5,000',
          '**MB per 1,000 peers**',
          'registrations/s: first 1,000, next 4,000',
        ],
        run.load.map((x) => [
          x.label,
          `**${Math.round(x.registrations.perSecond).toLocaleString('en-US')}** (${x.registrations.ok.toLocaleString('en-US')} in ${x.registrations.seconds.toFixed(1)} s)`,
          x.registrations.failed === 0 ? '0' : `${x.registrations.failed} (${x.registrations.firstError ?? ''})`,
          mb(x.memory.base),
          mb(x.memory.after1k),
          mb(x.memory.after5k),
          `**${mb(x.memory.perThousand)}**`,
          `${Math.round(x.memory.rates[0])}, ${Math.round(x.memory.rates[1])}`,
        ]),
      ),
      '',
    );
    const [workers, single] = run.load;
    if (workers && single && workers.memory.perThousand > single.memory.perThousand * 2) {
      lines.push(
        `With the data-plane workers each peer costs ${(workers.memory.perThousand / single.memory.perThousand).toFixed(1)}× the memory it does with the engine alone, ` +
          (workers.memory.rates[1] < workers.memory.rates[0] * 0.8 ? 'and a registration gets slower the more peers there are. ' : '') +
          'The registry and the API are the same in both rows, so the cost is in adding a peer to the sharded data plane.',
        '',
      );
    }
  }

  lines.push(
    '## How it was measured',
    '',
    '- Each server is a lab of its own: namespaces `cli` (the cage), `srv` (the server) and `inet` (`iperf3 -s` on 10.99.1.2), veths cli–srv on 198.18.0.0/24 and srv–inet on 10.99.1.0/24, ' +
      'tunnel MTU 1420. Nothing runs in the machine’s own network namespace; the labs are torn down at the end, on failure and on Ctrl-C.',
    '- wirecagesrv: `wirecagesrv up --allow-dest 10.99.1.0/24` (data-plane workers at their default, the CPU count), once as is (userspace NAT: stage 2 in a user namespace, ' +
      'the flows terminated by a namespace of its own and relayed by Node) and once with `--nat kernel`, started with `ip netns exec` so the kernel NAT’s forwarding and nftables table are the lab namespace’s. ' +
      'The cage registers with `curl` and gets its wg-quick file from the answer.',
    '- Anchor: wireguard-go ($WIREGUARD_GO, else the one on PATH; "Machine" below names the build) in `srv` with `net.ipv4.ip_forward=1` and an nftables `masquerade` for the pool, the same cage as the client.',
    '- The cage is `wirecage run -c FILE -- sleep infinity`; iperf3 runs in its network namespace (`nsenter -n`), the client in the cage, `-R` to send from the lab host.',
    `- Whole run: ${run.elapsed.toFixed(0)} s.`,
    '',
    ...machineSection(m),
  );
  return lines.join('\n');
}
