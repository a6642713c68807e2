// bench/results/dataplane.md: the goals first (reached or not, with the
// numbers), then one table per metric with ratios against the anchor, then
// how it was measured and on what.
import { busyNote, machineSection, s2, spread, table, times } from './markdown.js';
import { TESTS, UDP_DATAGRAM, type TestId } from './measure.js';
import { PAIR_TITLES } from './pairs.js';
import { ANCHOR, cpuPerGB, ratio, type BenchRun, type PairResult } from './results.js';
import type { PairName } from './options.js';

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (v: number) => v.toFixed(3);
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

function throughputOf(p: PairResult | undefined, t: TestId): number | undefined {
  return p?.transfers[t]?.bitsPerSecond;
}

function cpuOf(p: PairResult | undefined, t: TestId, side: 'left' | 'right'): number | undefined {
  const tr = p?.transfers[t];
  return tr === undefined ? undefined : cpuPerGB(tr.cpu[side], tr.bytes);
}

function overheadRange(p: PairResult): string {
  const all = (p.pingRounds ?? []).map((g) => g.medianMs - g.outerMedianMs);
  return all.length < 2 ? '' : ` (${ms(Math.min(...all))}–${ms(Math.max(...all))})`;
}

const pingOverhead = (p: PairResult | undefined) => (p?.ping === undefined ? undefined : p.ping.medianMs - p.ping.outerMedianMs);

interface Goal {
  goal: string;
  measured: string;
  reached: boolean | null;
}

function goals(run: BenchRun): Goal[] {
  const get = (n: PairName) => run.pairs.find((p) => p.name === n);
  const anchor = get(ANCHOR);
  const cw = get('cage-wg');
  const cc = get('cage-cage');
  const out: Goal[] = [];
  const allAtLeast = (rs: (number | null)[], min: number) => (rs.some((r) => r === null) ? null : rs.every((r) => r! >= min));

  const tput = TESTS.map((t) => ratio(throughputOf(cw, t.id), throughputOf(anchor, t.id)));
  out.push({
    goal: 'cage ↔ wireguard-go throughput ≥ 1.0× wireguard-go ↔ wireguard-go (every test)',
    measured: TESTS.map((t, i) => `${t.id} ${times(tput[i]!)}`).join(', '),
    reached: allAtLeast(tput, 1.0),
  });

  // "Same transfer": the cage's stage 2 against the wireguard-go at the other end of the very same iperf3 run (TCP both ways).
  const cpuTests = TESTS.filter((t) => t.id === 'tcp' || t.id === 'tcp-r');
  const cpu = cpuTests.map((t) => ratio(cpuOf(cw, t.id, 'left'), cpuOf(cw, t.id, 'right')));
  out.push({
    goal: 'our endpoint CPU per GB ≤ 0.8× the wireguard-go endpoint of the same transfer (cage ↔ wireguard-go, TCP both ways)',
    measured: cpuTests.map((t, i) => `${t.id} ${times(cpu[i]!)}`).join(', '),
    reached: cpu.some((r) => r === null) ? null : cpu.every((r) => r! <= 0.8),
  });

  const ours = ratio(throughputOf(cc, 'tcp'), throughputOf(anchor, 'tcp'));
  out.push({
    goal: 'cage ↔ cage single-stream TCP ≥ 1.5× wireguard-go ↔ wireguard-go',
    measured: times(ours),
    reached: ours === null ? null : ours >= 1.5,
  });

  const base = pingOverhead(anchor);
  const pingRows = [cw, cc].filter((p) => p?.ping !== undefined) as PairResult[];
  out.push({
    goal: 'ping overhead (tunnel median − bare veth median) ≤ 1.0× wireguard-go’s',
    measured:
      base === undefined || pingRows.length === 0
        ? '–'
        : `wireguard-go ${ms(base)} ms; ` + pingRows.map((p) => `${p.name} ${ms(pingOverhead(p)!)} ms`).join(', '),
    reached: base === undefined || pingRows.length === 0 ? null : pingRows.every((p) => pingOverhead(p)! <= base),
  });

  const cages = [cw, cc].filter((p) => p !== undefined);
  out.push({
    goal: 'client peak RSS < 150 MB (the cage’s stage 2, left side)',
    measured:
      cages.length === 0 ? '–' : cages.map((p) => `${p.name} ${mb(p.rss.left)} MB (whole wirecage ${mb(p.rss.leftProgram)} MB)`).join(', '),
    reached: cages.length === 0 ? null : cages.every((p) => p.rss.left < 150e6),
  });
  return out;
}

const verdict = (r: boolean | null) => (r === null ? 'not measured' : r ? '**reached**' : '**not reached**');

export function renderReport(run: BenchRun): string {
  const { machine: m, options: o } = run;
  const present = run.pairs.map((p) => p.name);
  const anchor = run.pairs.find((p) => p.name === ANCHOR);
  const pairCols = run.pairs.flatMap((p) => (p.name === ANCHOR ? [PAIR_TITLES[p.name]] : [PAIR_TITLES[p.name], '×']));
  const lines: string[] = [];

  lines.push('# Data plane: wirecage against wireguard-go', '');
  lines.push(
    `One run of \`npm run bench:dataplane -w bench\` on ${m.date.slice(0, 10)}: ${present.join(', ')}, ` +
      `${o.rounds} round${o.rounds === 1 ? '' : 's'} of ${o.duration} s iperf3 runs, the pairs interleaved test by test so the runs compared are seconds apart; ` +
      'per pair and test the run with the median throughput is reported whole (its CPU and loss figures with it). ' +
      'Absolute numbers move with the machine (it is shared); the ratios against wireguard-go ↔ wireguard-go measured in the same run are the headline.',
    '',
  );
  const busy = busyNote(m);
  if (busy !== null) lines.push(`${busy} Re-measure on a quiet machine before drawing conclusions.`, '');
  if (anchor === undefined) lines.push('The anchor pair (wg-wg) was not run (--only), so there are no ratios.', '');

  lines.push('## Goals', '');
  lines.push(
    ...table(
      ['goal', 'measured', 'verdict'],
      goals(run).map((g) => [g.goal, g.measured, verdict(g.reached)]),
    ),
    '',
  );

  lines.push(
    '## Throughput',
    '',
    `Payload Gbit/s at the receiving iperf3, the median of the rounds with the lowest and highest in parentheses; × is the ratio of the medians to ${PAIR_TITLES[ANCHOR]}.`,
    '',
  );
  lines.push(
    ...table(
      ['test', ...pairCols],
      TESTS.map((t) => [
        t.title,
        ...run.pairs.flatMap((p) => {
          const v = spread(throughputOf(p, t.id), p.rounds[t.id]);
          return p.name === ANCHOR ? [v] : [v, times(ratio(throughputOf(p, t.id), throughputOf(anchor, t.id)))];
        }),
      ]),
    ),
    '',
  );

  lines.push(
    '## UDP',
    '',
    `iperf3 -u -l ${UDP_DATAGRAM} -b ${o.udpBitrate} (0 = as fast as the sender can): datagrams per second sent and received, loss as the receiver counts it.`,
    '',
  );
  const anchorUdp = anchor?.transfers.udp?.udp;
  lines.push(
    ...table(
      ['pair', 'sent pkt/s', 'received pkt/s', 'loss', 'received × anchor'],
      run.pairs.map((p) => {
        const u = p.transfers.udp;
        if (u?.udp === undefined) return [PAIR_TITLES[p.name], '–', '–', '–', '–'];
        return [
          PAIR_TITLES[p.name],
          count(u.udp.sent / u.seconds),
          count(u.udp.packetsPerSecond),
          `${u.udp.lostPercent.toFixed(1)} %`,
          p.name === ANCHOR ? '' : times(ratio(u.udp.packetsPerSecond, anchorUdp?.packetsPerSecond)),
        ];
      }),
    ),
    '',
  );

  lines.push(
    '## Round trip',
    '',
    `${o.pings} pings at 20 ms intervals through the tunnel, then the same over the bare veth between the two namespaces, once per round; overhead = tunnel median − veth median. The round with the median overhead is shown, the lowest and highest overhead of the rounds in parentheses.`,
    '',
  );
  lines.push(
    ...table(
      ['pair', 'median ms', 'avg ms', 'replies', 'veth median ms', 'overhead ms', 'median × anchor', 'overhead × anchor'],
      run.pairs.map((p) => {
        const g = p.ping;
        if (g === undefined) return [PAIR_TITLES[p.name], '–', '–', '–', '–', '–', '–', '–'];
        return [
          PAIR_TITLES[p.name],
          ms(g.medianMs),
          ms(g.avgMs),
          `${g.received}/${g.sent}`,
          ms(g.outerMedianMs),
          ms(g.medianMs - g.outerMedianMs) + overheadRange(p),
          p.name === ANCHOR ? '' : times(ratio(g.medianMs, anchor?.ping?.medianMs)),
          p.name === ANCHOR ? '' : times(ratio(pingOverhead(p), pingOverhead(anchor))),
        ];
      }),
    ),
    '',
  );

  lines.push(
    '## CPU per GB',
    '',
    'CPU seconds (user + system, all threads) each endpoint process spent during the run, per 10⁹ payload bytes received. ' +
      '“× anchor” compares with the wireguard-go on the same side of wg-wg; “ours ÷ theirs” compares the cage with the wireguard-go at the other end of the same transfer.',
    '',
  );
  const cpuRows: string[][] = [];
  for (const t of TESTS) {
    for (const p of run.pairs) {
      const l = cpuOf(p, t.id, 'left');
      const r = cpuOf(p, t.id, 'right');
      const mixed = p.kinds.left !== p.kinds.right;
      cpuRows.push([
        t.title,
        PAIR_TITLES[p.name],
        `${s2(l)} (${p.kinds.left})`,
        `${s2(r)} (${p.kinds.right})`,
        p.name === ANCHOR ? '' : times(ratio(l, cpuOf(anchor, t.id, 'left'))),
        p.name === ANCHOR ? '' : times(ratio(r, cpuOf(anchor, t.id, 'right'))),
        mixed ? times(ratio(l, r)) : '',
      ]);
    }
  }
  lines.push(...table(['test', 'pair', 'left s/GB', 'right s/GB', 'left × anchor', 'right × anchor', 'ours ÷ theirs'], cpuRows), '');

  lines.push(
    '## Peak RSS',
    '',
    'VmHWM of each endpoint process at the end of the run, in MB (10⁶ bytes); for a cage also the sum over the whole wirecage program (stage 1, the userns helper, stage 2).',
    '',
  );
  const rssCell = (p: PairResult, side: 'left' | 'right') => {
    const kind = p.kinds[side];
    const own = `${mb(p.rss[side])} (${kind})`;
    return kind === 'wirecage' ? `${own}; whole wirecage ${mb(side === 'left' ? p.rss.leftProgram : p.rss.rightProgram)}` : own;
  };
  lines.push(
    ...table(
      ['pair', 'left', 'right'],
      run.pairs.map((p) => [PAIR_TITLES[p.name], rssCell(p, 'left'), rssCell(p, 'right')]),
    ),
    '',
  );

  lines.push(
    '## How it was measured',
    '',
    '- Each pair is a lab of its own: two network namespaces (`wct<token>-left`, `-right`) joined by a veth on 198.18.k.0/24, the tunnel on 10.77.n.0/24 ' +
      '(left .1, right .2), MTU 1420 everywhere. Nothing runs in the machine’s own network namespace; the labs are torn down at the end, on failure and on Ctrl-C.',
    `- wireguard-go is the one first on PATH (\`wireguard-go --version\`: ${m.wireguardGo}; Debian’s build says v0.0.20220316, the 2023 anchor v0.0.20230223), one process per side (\`wireguard-go -f\`), configured with \`wg set\`.`,
    '- The engine pair (eng-wg; only when named with --only) runs bench/lib/engine-peer.ts instead of a cage: the same Device and attachDevice (2 workers unless --workers, offloads on, a TUN queue per shard), the TUN and UDP sockets in the left namespace itself (no cage around it, as wireguard-go), the iperf3 client and ping in that namespace: the data plane apart from the cage.',
    '- A cage is `node packages/cli/bin/run.js run -c FILE -- CMD` started in a lab namespace with `ip netns exec`. The right cage of cage ↔ cage runs `iperf3 -s` as its command; ' +
      'a left cage runs `sleep infinity`, and the iperf3 client and ping are started in that cage’s network namespace with `nsenter -t <pid of the cage’s init> -n`, so they use the cage’s TUN exactly as its command would. ' +
      'Cage ↔ cage: both cages have ListenPort 51820 and each other as Endpoint.',
    '- The endpoint process of a cage is stage 2: the descendant of the `wirecage` process whose argv runs `.../cage/stage2.js` (wirecage → wirecage-userns → node stage2.js → the command; the helper’s argv names stage2.js too, so the match also requires /proc/<pid>/exe to be node). ' +
      'It owns the UDP socket, the TUN and the engine, with its worker threads. CPU is utime + stime of `/proc/<pid>/stat` (the whole thread group, children excluded), read just before and after each iperf3 run; peak RSS is VmHWM of `/proc/<pid>/status`.',
    '- iperf3 client on the left, server on the right; the forward tests send left → right, `-R` sends right → left. No `-O`: the bytes and the CPU window are the same.',
    `- Order: all labs are built first; then ping on each pair; then ${o.rounds} round(s), each running every iperf3 test on each pair in turn. Whole run: ${run.elapsed.toFixed(0)} s.`,
    `- --workers: ${run.workersNote}.`,
    '',
  );

  lines.push(...machineSection(m));
  return lines.join('\n');
}
