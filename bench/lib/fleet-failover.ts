// The failover of bench/fleet.bench.ts: a cage (`wirecage run`, registered
// through node 1, so node 1 is its answer's first endpoint) pings the lab's
// internet host through the fleet; node 1 is killed with SIGKILL (its whole
// process group: a machine that dies); the figure is the time from the kill to
// the first echo reply after it, which can only have come through another
// node. The cage's own log says when it gave node 1 up and for which endpoint
// (heal-resolve.ts's "handshakes unanswered for N s on A; trying B"): that
// line splits the time into the wait before the move and the move itself.
import { INET4, addServer } from '@wirecage/tests/lib/srv-lab.js';
import { killNode, startNode, type FleetLab, type FleetNode } from '@wirecage/tests/lib/srv-fleet.js';
import { spawnWirecage } from '@wirecage/tests/lib/cage.js';
import type { LabProcess } from '@wirecage/tests/lib/process.js';
import { waitFor } from '@wirecage/tests/lib/wait.js';

/** ping's interval in the cage (the shortest an unprivileged ping may use): the figure's resolution. */
export const PING_INTERVAL_S = 0.2;
/** WireGuard starts a new handshake after sending for Keepalive-Timeout + Rekey-Timeout without hearing back. */
export const SILENT_PEER_S = 15;
/** The cage's --reresolve-after when the flag is not given (and the server's file sets none). */
export const DEFAULT_RERESOLVE_S = 60;

export interface FailoverRound {
  /** --reresolve-after given, or null for the default. */
  reresolveAfter: number | null;
  /** ms from the kill to the first echo reply after it. */
  killToReply: number;
  /** ms from the kill until the cage's log said it moved (seen by polling every 100 ms). */
  killToMove: number;
  /** The log's "handshakes unanswered for N s": how long its handshakes had gone unanswered when it moved. */
  unansweredS: number;
  /** ms from the last reply before the kill to the kill: up to one ping interval. */
  lastReplyBeforeKill: number;
  /** The endpoint it moved to, and the node that is. */
  movedTo: string;
  movedToNode: string;
}

/** The ping -D replies in `text`: the wall-clock ms of each. */
function replies(text: string): number[] {
  return [...text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from /gm)].map((m) => Number(m[1]) * 1000);
}

const MOVE = /handshakes unanswered for (\d+) s on (\S+); trying (\S+) \(/;

/** Starts the cage pinging INET4 and waits for its first replies (through node 1). */
async function startPinger(f: FleetLab, reresolveAfter: number | null): Promise<LabProcess> {
  const flags = reresolveAfter === null ? [] : ['--reresolve-after', String(reresolveAfter)];
  // stdbuf: ping's stdout is a pipe here, which it would buffer by the block; each reply's time is read as it comes.
  const cage = spawnWirecage(
    f.cli,
    ['fleet', ...flags, '--log-level', 'info', '--', 'stdbuf', '-oL', 'ping', '-n', '-D', '-i', String(PING_INTERVAL_S), INET4],
    { env: f.env, outputLimit: 4 << 20 },
  );
  await waitFor(() => (cage.assertRunning(), replies(cage.output()).length >= 5), {
    what: 'five echo replies through node 1',
    timeoutMs: 60_000,
    intervalMs: 100,
    describe: () => cage.describe(),
  });
  return cage;
}

/** One round: cage up through node 1, node 1 killed, the first reply after it; node 1 started again for the next round. */
export async function failoverRound(f: FleetLab, reresolveAfter: number | null): Promise<FailoverRound> {
  const [node1] = f.nodes as [FleetNode, ...FleetNode[]];
  const cage = await startPinger(f, reresolveAfter);
  try {
    const killed = Date.now();
    await killNode(node1);
    const describe = () => `${cage.describe()}\n${f.nodes.map((n) => n.proc?.describe() ?? `${n.name}: killed`).join('\n')}`;
    const bound = (SILENT_PEER_S + (reresolveAfter ?? DEFAULT_RERESOLVE_S) + 30) * 1000;
    const move = await waitFor(() => (cage.assertRunning(), MOVE.exec(cage.output())), {
      what: 'the cage to move off node 1',
      timeoutMs: bound,
      intervalMs: 100,
      describe,
    });
    const killToMove = Date.now() - killed;
    const first = await waitFor(() => (cage.assertRunning(), replies(cage.output()).find((t) => t > killed)), {
      what: 'an echo reply through another node',
      timeoutMs: 30_000,
      intervalMs: 100,
      describe,
    });
    if (move[2] !== node1.endpoint) throw new Error(`the cage was on ${move[2]}, not node 1 (${node1.endpoint}):\n${describe()}`);
    const before = replies(cage.output()).filter((t) => t <= killed);
    return {
      reresolveAfter,
      killToReply: first - killed,
      killToMove,
      unansweredS: Number(move[1]),
      lastReplyBeforeKill: killed - before[before.length - 1]!,
      movedTo: move[3]!,
      movedToNode: f.nodes.find((n) => n.endpoint === move[3])?.name ?? 'not a node',
    };
  } finally {
    await cage.stop(5_000);
    if (!node1.proc?.running) await startNode(f, node1);
  }
}

/** The cage's server: the fleet through node 1's API (its answer lists node 1's endpoint first). */
export async function addFleetServer(f: FleetLab): Promise<void> {
  await addServer({ srvAddr: f.nodes[0]!.addr, env: f.env }, 'fleet');
}
