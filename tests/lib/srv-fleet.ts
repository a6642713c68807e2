// The fleet lab (issue 16): three `wirecagesrv up` nodes, each in a namespace
// of its own, on one PostgreSQL registry (the lab's unprivileged cluster on a
// unix socket, @wirecage/netns/lab), sharing one private key, one pool and
// one list of WireGuard endpoints (each node its own first). The client
// namespace `cli` reaches every node's API and WireGuard port by a veth of
// its own; the "internet" host (INET4 on the loopback of `inet`) is reached by
// every node through a /30 of 10.99.1.0/24 (so srv-lab's --allow-dest covers
// it), and the node's end of that link is where its forwards' public ports
// are reached from `inet`. Servers start with srv-lab's startWirecagesrv, one
// SrvSide per node, so srv-lab's and srv-client's helpers work per node.
import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { postgresBinDir, startLabPostgres, type LabPostgres, type LabPostgresOptions } from '@wirecage/netns/lab';
import { runOrThrow } from './exec.js';
import type { Lab, Netns } from './netns.js';
import type { LabProcess } from './process.js';
import { assertSrvBuilt, INET4, scrapeMetrics, SRV_TOKEN, startWirecagesrv, type SrvSide } from './srv-lab.js';
import { generateKeyPair, writeSecretFile } from './wg.js';

/**
 * The fleet's IPv4 pool: a /21 for a thousand peers and more. It holds srv-lab's GATEWAY4
 * (10.200.100.1), so a client's ping to that goes into its tunnel (and starts a handshake) as in
 * the one-server labs, though the fleet's own gateway is FLEET_GATEWAY4.
 */
export const FLEET_SUBNET = '10.200.96.0/21';
export const FLEET_GATEWAY4 = '10.200.96.1';
export const FLEET_ADMIN = 'lab-admin-fleet-0123456789';
/** Every node serves metrics here, on its own namespace's loopback. */
export const FLEET_METRICS = '127.0.0.1:9588';
const FLEET_DB = 'fleet';
const WG_PORT = 51820;
const API_PORT = 8443;

export interface FleetNode {
  /** Its --node-name: node1, node2, node3. */
  readonly name: string;
  readonly ns: Netns;
  /** Its address on its veth from `cli`: its API and its WireGuard endpoint. */
  readonly addr: string;
  /** Its address on its link to `inet`: where its forwards' public ports are reached from there. */
  readonly public4: string;
  /** `addr:51820`. */
  readonly endpoint: string;
  /** `http://addr:8443`. */
  readonly api: string;
  /** The lab as this node's server sees it (srv-lab's `srv` is this node's namespace). */
  readonly side: SrvSide;
  /** The running `wirecagesrv up`, once startNode resolved. */
  proc: LabProcess | null;
}

export interface FleetLab {
  lab: Lab;
  cli: Netns;
  inet: Netns;
  nodes: FleetNode[];
  pg: LabPostgres;
  /** The lab cluster's database, by its unix socket (no password: trust authentication). */
  registry: string;
  /**
   * The nodes' --registry-url-file, holding `registry`: as the credential registry-url would (a
   * bench points the nodes it starts next at another database by rewriting it).
   */
  registryFile: string;
  dir: string;
  /** The environment for `wirecage` in `cli` (HOME and XDG_CONFIG_HOME in `dir`). */
  env: NodeJS.ProcessEnv;
  tokenFile: string;
  adminFile: string;
  /** The one private key every node serves with. */
  keyFile: string;
}

/**
 * Namespaces, links, the PostgreSQL cluster and the fleet's shared files; the nodes are started by
 * startFleet. `pgOptions`: the cluster's (a bench makes it durable, as SQLite's file is).
 */
export async function fleetLab(lab: Lab, count = 3, pgOptions: LabPostgresOptions = {}): Promise<FleetLab> {
  assertSrvBuilt(['apps/wirecagesrv/dist/registry/postgres/registry.js', 'apps/wirecagesrv/dist/fleet/sync.js']);
  const cli = await lab.namespace('cli');
  const inet = await lab.namespace('inet');
  await inet.addAddress('lo', `${INET4}/32`);
  const dir = await lab.tempDir();
  const tokenFile = await writeSecretFile(dir, 'token', `${SRV_TOKEN}\n`);
  const nodes: FleetNode[] = [];
  for (let k = 0; k < count; k++) {
    const name = `node${k + 1}`;
    const ns = await lab.namespace(name);
    const addr = (await lab.veth(cli, ns, { v6: false })).b.v4!;
    const base = 16 + 4 * k;
    await lab.veth(ns, inet, { v4: [`10.99.1.${base + 1}/30`, `10.99.1.${base + 2}/30`], v6: false });
    await ns.addRoute(`${INET4}/32`, { via: `10.99.1.${base + 2}` });
    const side = { srv: ns, cli, srvAddr: addr, dir: join(dir, name), tokenFile };
    await mkdir(side.dir, { mode: 0o700 });
    nodes.push({
      name,
      ns,
      addr,
      public4: `10.99.1.${base + 1}`,
      endpoint: `${addr}:${WG_PORT}`,
      api: `http://${addr}:${API_PORT}`,
      side,
      proc: null,
    });
  }
  const pg = await startLabPostgres(pgOptions);
  lab.onTeardown(() => pg.stop());
  const registry = await pg.createDatabase(FLEET_DB);
  return {
    lab,
    cli,
    inet,
    nodes,
    pg,
    registry,
    registryFile: await writeSecretFile(dir, 'registry-url', `${registry}\n`),
    dir,
    env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') },
    tokenFile,
    adminFile: await writeSecretFile(dir, 'admin', `${FLEET_ADMIN}\n`),
    keyFile: (await generateKeyPair(dir, 'server')).privateKeyFile,
  };
}

/** `wirecagesrv up` as `node` of the fleet, once its API answers /healthz. */
export async function startNode(f: FleetLab, node: FleetNode): Promise<LabProcess> {
  const others = f.nodes.filter((n) => n !== node).map((n) => n.endpoint);
  node.proc = await startWirecagesrv(node.side, {
    state: join(node.side.dir, 'state', 'registry.db'),
    wgEndpoint: [node.endpoint, ...others].join(','),
    args: [
      ...['--registry-url-file', f.registryFile, '--node-name', node.name, '--private-key-file', f.keyFile],
      ...['--subnet', FLEET_SUBNET, '--max-peers', '2000', '--register-rate', '100000'],
      ...['--admin-token-file', f.adminFile, '--metrics-listen', FLEET_METRICS],
      // The data plane inline: three servers share two cores with the clients.
      ...['--workers', '0'],
    ],
  });
  return node.proc;
}

/** Every node at once (they migrate the one database together: the store's lock makes one of them do it). */
export async function startFleet(f: FleetLab): Promise<void> {
  await Promise.all(f.nodes.map((n) => startNode(f, n)));
}

/** SIGKILL to the node's whole process group (stage 1, the user-namespace helper, stage 2): a machine that dies. */
export async function killNode(node: FleetNode): Promise<void> {
  const p = node.proc;
  if (!p?.pid) throw new Error(`${node.name} is not running`);
  process.kill(-p.pid, 'SIGKILL');
  await p.exited;
}

/** The node's /metrics text. */
export const nodeMetrics = (node: FleetNode): Promise<string> => scrapeMetrics(node.ns, FLEET_METRICS);

/** `s` matched literally in a RegExp. */
export const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The value of the one series `name{...public_key="KEY"...}` in `text`, or null when the device has no such peer. */
export function peerSeries(text: string, name: string, key: string): number | null {
  const m = new RegExp(`^${name}\\{[^}]*public_key="${escapeRe(key)}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** The peers on the node's WireGuard device (wireguard_peers). */
export async function devicePeers(node: FleetNode): Promise<number> {
  const m = /^wireguard_peers\{[^}]*\} (\d+)$/m.exec(await nodeMetrics(node));
  if (!m) throw new Error(`${node.name}'s metrics have no wireguard_peers`);
  return Number(m[1]);
}

/** Each peer of the node's device and its IPv4 allowed IP (wireguard_peer_allowed_ips_info). */
export async function deviceAllowed4(node: FleetNode): Promise<Map<string, string>> {
  const re = /^wireguard_peer_allowed_ips_info\{([^}]*)\} \S+$/gm;
  const out = new Map<string, string>();
  for (const m of (await nodeMetrics(node)).matchAll(re)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (labels.family === 'IPv4') out.set(labels.public_key!, labels.allowed_ips!);
  }
  return out;
}

/**
 * Takes the database away from `node` alone: its connections (pool and change listener, by their
 * application_name wirecagesrv/NODE...) are ended and the server's socket file is hidden, so it
 * cannot connect again, while the other nodes go on over the connections they hold. One psql
 * session does both, hiding first (a shell escape), so nothing of the node reconnects in between.
 * Resolves to the number of the node's connections ended, and a function that brings the socket back.
 */
export async function cutOffNode(f: FleetLab, node: FleetNode): Promise<{ ended: number; restore: () => Promise<void> }> {
  const socket = (await readdir(f.pg.socketDir)).find((n) => /^\.s\.PGSQL\.\d+$/.test(n));
  if (!socket) throw new Error(`no PostgreSQL socket in ${f.pg.socketDir}`);
  const [shown, hidden] = [join(f.pg.socketDir, socket), join(f.pg.socketDir, 'hidden')];
  const end = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'wirecagesrv/${node.name}%'`;
  const psql = join(postgresBinDir(), 'psql');
  const r = await runOrThrow(psql, [
    '-X',
    '-q',
    '-A',
    '-t',
    '-h',
    f.pg.socketDir,
    '-U',
    f.pg.user,
    '-d',
    FLEET_DB,
    '-c',
    `\\! mv ${shown} ${hidden}`,
    '-c',
    end,
  ]);
  return { ended: Number(r.stdout.trim()), restore: () => rename(hidden, shown) };
}
