// The registrations of bench/fleet.bench.ts: POST /v1/register against real
// `wirecagesrv up` processes of the fleet lab (tests/lib/srv-fleet.ts), for
// one node on SQLite, one node on PostgreSQL and three nodes on one
// PostgreSQL, each round on a fresh registry (so every round starts empty and
// the pool never fills). The load (fleet-load.mjs) keeps the same number of
// requests in flight per node; afterwards every answered address is checked
// to be distinct, and the registry (GET /v1/peers) to hold exactly the keys
// that were answered, with the addresses they were given.
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLEET_ADMIN, FLEET_METRICS, FLEET_SUBNET, startNode, type FleetLab, type FleetNode } from '@wirecage/tests/lib/srv-fleet.js';
import { SRV_TOKEN, startWirecagesrv } from '@wirecage/tests/lib/srv-lab.js';
import { writeSecretFile } from '@wirecage/tests/lib/wg.js';
import { postmasterPid, treeCpu } from './fleet-cpu.js';

const LOAD = fileURLToPath(new URL('./fleet-load.mjs', import.meta.url));

export type RegVariantId = 'sqlite' | 'pg-1' | 'pg-3';
export const REG_VARIANTS: { id: RegVariantId; label: string; nodes: number }[] = [
  { id: 'sqlite', label: 'one node, SQLite', nodes: 1 },
  { id: 'pg-1', label: 'one node, PostgreSQL', nodes: 1 },
  { id: 'pg-3', label: 'three nodes, one PostgreSQL', nodes: 3 },
];

/** The most registrations one round starts: the fleet lab's --max-peers is 2000 (a /21 pool). */
export const ROUND_CAP = 1800;

export interface RegRound {
  variant: RegVariantId;
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  /** CPU seconds of the load generator (the client side shares the machine with the servers). */
  clientCpu: number;
  /** Answers per node, in node order. */
  perNode: number[];
  /** CPU ms per answered registration: every node's processes together, and PostgreSQL's (null on SQLite). */
  nodeCpuMs: number;
  pgCpuMs: number | null;
  /** Distinct IPv4 addresses among the answers (must equal ok). */
  distinct4: number;
  firstError?: string;
}

interface LoadOut {
  ok: number;
  failed: number;
  seconds: number;
  cpuSeconds: number;
  statuses: Record<string, number>;
  firstError?: string;
  perApi: Record<string, number>;
  peers: [string, string, string | null][];
}

/**
 * One node on SQLite: `up` with the fleet lab's flags as far as they concern a single server
 * (startNode's pool, peer limit, registration rate, key, inline data plane), a fresh file.
 */
function startSqliteNode(f: FleetLab, node: FleetNode, round: number) {
  return startWirecagesrv(node.side, {
    state: join(node.side.dir, `sqlite-round-${round}`, 'registry.db'),
    wgEndpoint: node.endpoint,
    args: [
      ...['--node-name', node.name, '--private-key-file', f.keyFile],
      ...['--subnet', FLEET_SUBNET, '--max-peers', '2000', '--register-rate', '100000'],
      ...['--admin-token-file', f.adminFile, '--metrics-listen', FLEET_METRICS, '--workers', '0'],
    ],
  });
}

/** Points the fleet at a fresh, empty PostgreSQL database (the nodes read the URL file as they start). */
async function freshDatabase(f: FleetLab, round: number, variant: RegVariantId): Promise<void> {
  const url = await f.pg.createDatabase(`bench_${variant.replace('-', '_')}_${round}`);
  await writeSecretFile(dirname(f.registryFile), basename(f.registryFile), `${url}\n`);
}

/** Starts the variant's nodes on a fresh registry; resolves to the nodes serving. */
export async function startVariant(f: FleetLab, variant: RegVariantId, round: number): Promise<FleetNode[]> {
  const nodes = f.nodes.slice(0, variant === 'pg-3' ? 3 : 1);
  if (variant === 'sqlite') {
    nodes[0]!.proc = await startSqliteNode(f, nodes[0]!, round);
    return nodes;
  }
  await freshDatabase(f, round, variant);
  await Promise.all(nodes.map((n) => startNode(f, n)));
  return nodes;
}

export async function stopNodes(nodes: FleetNode[]): Promise<void> {
  await Promise.all(nodes.map(async (n) => (await n.proc?.stop(10_000), (n.proc = null))));
}

/** Every key answered, and no other, in the registry with the address it was given. */
async function checkRegistry(f: FleetLab, node: FleetNode, peers: LoadOut['peers']): Promise<void> {
  const r = await f.cli.runOrThrow('curl', ['-sS', '--fail-with-body', '--max-time', '30', '-H', '@-', `${node.api}/v1/peers`], {
    input: `Authorization: Bearer ${FLEET_ADMIN}\n`,
    timeoutMs: 40_000,
  });
  const listed = (JSON.parse(r.stdout) as { peers: { client_public_key: string; client_address: string }[] }).peers;
  const want = new Map(peers.map(([key, addr]) => [key, addr.replace(/\/\d+$/, '')]));
  const wrong = listed.filter((p) => want.get(p.client_public_key) !== p.client_address.replace(/\/\d+$/, ''));
  if (listed.length !== want.size || wrong.length > 0)
    throw new Error(
      `the registry holds ${listed.length} peers for ${want.size} answered registrations; ${wrong.length} differ from their answers` +
        (wrong[0] ? ` (first: ${JSON.stringify(wrong[0])})` : ''),
    );
}

/** Runs one round's load against `nodes` and checks its answers and the registry. */
export async function registerRound(
  f: FleetLab,
  variant: RegVariantId,
  nodes: FleetNode[],
  o: { concurrency: number; seconds: number },
): Promise<RegRound> {
  const pg = variant === 'sqlite' ? null : postmasterPid(f.pg.socketDir);
  const cpu = () => ({ nodes: nodes.reduce((a, n) => a + treeCpu(n.proc!.pid!), 0), pg: pg === null ? 0 : treeCpu(pg) });
  const cpu0 = cpu();
  const r = await f.cli.run(
    process.execPath,
    [LOAD, String(o.concurrency), String(o.seconds), String(ROUND_CAP), ...nodes.map((n) => n.api)],
    { input: SRV_TOKEN, timeoutMs: (o.seconds + 60) * 1000 },
  );
  if (r.code !== 0) throw new Error(`fleet-load.mjs failed (exit ${r.code}): ${r.stderr.trim()}`);
  const cpu1 = cpu();
  const out = JSON.parse(r.stdout) as LoadOut;
  const describe = () => nodes.map((n) => n.proc?.describe() ?? `${n.name}: not running`).join('\n');
  if (out.ok === 0) throw new Error(`no registration succeeded: ${out.firstError ?? 'no error recorded'}\n${describe()}`);
  const distinct4 = new Set(out.peers.map((p) => p[1])).size;
  const distinct6 = new Set(out.peers.map((p) => p[2])).size;
  if (distinct4 !== out.ok || (out.peers[0]![2] !== null && distinct6 !== out.ok))
    throw new Error(
      `${variant}: ${out.ok} registrations answered with ${distinct4} IPv4 and ${distinct6} IPv6 addresses: one went to two keys`,
    );
  await checkRegistry(f, nodes[0]!, out.peers);
  return {
    variant,
    ok: out.ok,
    failed: out.failed,
    seconds: out.seconds,
    perSecond: out.ok / out.seconds,
    clientCpu: out.cpuSeconds,
    nodeCpuMs: ((cpu1.nodes - cpu0.nodes) * 1000) / out.ok,
    pgCpuMs: pg === null ? null : ((cpu1.pg - cpu0.pg) * 1000) / out.ok,
    perNode: nodes.map((n) => out.perApi[n.api] ?? 0),
    distinct4,
    firstError: out.firstError,
  };
}
