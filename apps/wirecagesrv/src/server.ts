// wirecagesrv put together: the registry, a WireGuard device on a UDP port
// holding every registered peer, and the API that registers more. Peers are
// loaded from the registry at start, so a restart keeps all of them.
// Decrypted packets go to the NAT (nat/), when one is asked for.
import { Device, Endpoint, keyToBase64, parseCidr, parseKeyBase64, silentLogger, type Logger } from '@wirecage/wg-engine';
import { attachDevice, type Attachment, type DataPlane } from '@wirecage/wg-engine/data-plane';
import { createApiHandler, type ApiOptions } from './api/routes.js';
import { startLeaseExpiry } from './api/lease-expiry.js';
import { apiUrl, listenApi, type ApiListen, type ApiServer, type TlsFiles } from './api/listen.js';
import type { RateLimitOptions } from './api/caller.js';
import { ProofVerifier } from './api/proof.js';
import { readinessOf, readyzListener, type Readiness, type ReadinessCheck } from './api/readyz.js';
import { registryWritable, wireGuardBound } from './api/readiness-checks.js';
import type { ReloadAnswer } from './api/reload.js';
import { DEFAULT_FORWARD_PORTS, ForwardManager, restoreForwards, type PortRange } from './forwards/index.js';
import { formatListen, type ListenAddress } from './listen.js';
import type { Nat, NatOptions, ReadyNat } from './nat/index.js';
import { openRegistry, type PeerRecord, type Registry } from './registry/index.js';
import { CleanupStack } from '@wirecage/netns';
import { FleetSync, startHeartbeat, type NodeInfo } from './fleet/index.js';
import { reloader, type ReloadSources, type Secrets } from './up/reload.js';
import { DEFAULT_REGISTER_RATE, type LiveSettings, type SettingsRead } from './config/live-settings.js';
import type { SwitchableLogger } from './config/logger.js';
import { DEFAULT_MAX_FLOWS, DEFAULT_MAX_FLOWS_PER_PEER } from './nat/limits.js';

export const PERSISTENT_KEEPALIVE = 25;
export const DEFAULT_MAX_PEERS = 1024;
/** How long a stop lets API requests in flight finish (--drain-timeout). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

export interface ServerConfig {
  privateKey: Buffer;
  authToken: string;
  /** host:port told to clients. */
  wgEndpoint: string;
  /** Every host:port clients may use (the nodes of a fleet), wgEndpoint first; default [wgEndpoint]. */
  wgEndpoints?: string[];
  wgListen: ListenAddress;
  /**
   * WireGuard sockets already bound (by stage 1), one per data-plane shard: with a NAT
   * max(workers, 1) of them in one SO_REUSEPORT group, without one a single socket. wgListen is
   * then only named in messages.
   */
  wgSockets?: number[];
  apiListen: ApiListen;
  tls?: TlsFiles;
  /** The local state directory's registry file: the registry when `registry` is not given. */
  statePath: string;
  /** The registry: an SQLite file, or a postgres:// URL shared by the nodes of a fleet. Default statePath. */
  registry?: string;
  /** This node's name in the registry (its sessions, its heartbeat); default the host name. */
  nodeName?: string;
  subnet?: string;
  subnet6?: string;
  mtu: number;
  maxPeers?: number;
  /** Resolvers told to clients; default the server's tunnel addresses, where the NAT's DNS forwarder answers. */
  dns?: string[];
  rateLimit?: RateLimitOptions;
  /** CIDRs of reverse proxies believed about the client (X-Forwarded-For, Forwarded) for the limits. */
  trustedProxies?: string[];
  /** How long a registration lasts without renewal, in ms; default 30 days. */
  leaseMs?: number;
  /** Manages every port forward (no key proof needed); none when undefined. */
  adminToken?: string;
  /** The files the tokens came from, read again by reload(); a token without one is kept as it is. */
  tokenFiles?: { auth?: string; admin?: string };
  /** How long close() lets the API's requests in flight finish, in ms; default DEFAULT_DRAIN_TIMEOUT_MS. */
  drainTimeoutMs?: number;
  /** Address the public ports of forwards are bound on. Default 0.0.0.0. */
  forwardListenAddress?: string;
  /** The public ports forwards may take. Default 20000-29999 (DEFAULT_FORWARD_PORTS). */
  forwardPorts?: PortRange;
  /** Where decrypted packets go; without it they are dropped. The userspace NAT needs root in a user namespace (stage 2). */
  nat?: NatOptions;
  /**
   * Data-plane shard workers between the NAT's TUN and the WireGuard socket; 0 runs the same shard
   * inline on the main thread. Default 0.
   */
  workers?: number;
  /** Serve Prometheus metrics (engine, data plane, registry, NAT) at http://ADDR/metrics. */
  metricsListen?: string;
  logger?: Logger;
  /**
   * The settings file (--config-file) a reload reads again: its egress policy, NAT flow limits,
   * register rate (in place of rateLimit) and log level (set on `logger`) apply live.
   */
  settingsFile?: { file: string; read: () => SettingsRead; logger: SwitchableLogger };
}

export interface RunningServer {
  registry: Registry;
  device: Device;
  udp: { readonly port: number; close(): void | Promise<void> };
  nat: ReadyNat | null;
  api: ApiServer;
  forwards: ForwardManager;
  publicKey: string;
  /**
   * Reads the TLS files and the token files again and serves them (`trigger` names the cause in the
   * log): as SIGHUP and POST /v1/reload do. Rejects with a ReloadError, changing nothing, when one cannot serve.
   */
  reload(trigger: string): Promise<ReloadAnswer>;
  /** Drains the API (bounded by drainTimeoutMs), then closes everything. */
  close(): Promise<void>;
}

function peerRoutes(p: PeerRecord) {
  return [parseCidr(`${p.address4}/32`), parseCidr(`${p.address6}/128`)];
}

export async function startServer(cfg: ServerConfig): Promise<RunningServer> {
  const log = cfg.logger ?? silentLogger;
  const registry = await openRegistry({
    location: cfg.registry ?? cfg.statePath,
    subnet: cfg.subnet,
    subnet6: cfg.subnet6,
    maxPeers: cfg.maxPeers ?? DEFAULT_MAX_PEERS,
    leaseMs: cfg.leaseMs,
    node: cfg.nodeName,
    logger: log,
  });
  const cleanup = new CleanupStack();
  cleanup.push(() => registry.close());
  try {
    return await assemble(cfg, registry, cleanup, log);
  } catch (err) {
    // The error that stopped the start is the one to report; a failing close only adds to the log.
    await cleanup.unwind().catch((e: unknown) => log.warn(`closing after a failed start: ${(e as Error).message}`));
    throw err;
  }
}

/** Everything after the registry, each part's close pushed onto `cleanup` as soon as it is open. */
async function assemble(cfg: ServerConfig, registry: Registry, cleanup: CleanupStack, log: Logger): Promise<RunningServer> {
  const forwards = new ForwardManager({
    listenAddress: cfg.forwardListenAddress,
    ports: cfg.forwardPorts ?? DEFAULT_FORWARD_PORTS,
    logger: log,
  });
  const peers = await registry.list();
  const dev = newDevice(cfg, registry.maxPeers, peers.length, log);
  cleanup.push(() => dev.down());
  // In a fleet: keeps the device and the forwards in step with what the other nodes write.
  let sync: FleetSync | null = null;
  const publicKey = loadPeers(dev, cfg, peers, registry, log, (key) => sync?.sessionHere(key));
  const nat = cfg.nat ? await startNatFor(dev, registry, cfg, log) : null;
  if (nat) {
    cleanup.push(() => nat.close());
    forwards.setNatNetns(nat.netnsFd);
  }
  const udp = await attachUdp(dev, nat, cfg, log);
  cleanup.push(() => udp.close());
  cleanup.push(() => forwards.closeAll());
  const readiness = readinessOf(readinessChecks(cfg, registryWritable(registry), udp, nat));
  // What GET /v1/nodes and the fleet gauges say of this server; the API's address is filled in once it listens.
  const node: NodeInfo = { endpoint: cfg.wgEndpoint, api: '', startedAt: new Date() };
  const scraped = { device: dev, plane: udp.plane ?? null, registry, node, forwards, nat, readiness };
  if (cfg.metricsListen) {
    const metrics = await serveMetrics(cfg.metricsListen, scraped);
    cleanup.push(() => metrics.close());
  }
  await bringUp(dev, registry, forwards, log);
  const offDevice = peerRemover(dev, nat, log);
  const setPeer = (p: PeerRecord) => void dev.setPeer(parseKeyBase64(p.publicKey), { allowedIps: peerRoutes(p), replaceAllowedIps: true });
  if (registry.fleet) {
    sync = await FleetSync.start({ registry, fleet: registry.fleet, manager: forwards, peers, setPeer, onRemoved: offDevice, log });
    cleanup.push(() => sync!.close());
  }
  const onRegistered = (p: PeerRecord) => (setPeer(p), sync?.added(p));
  const onRemoved = async (p: PeerRecord) => (sync?.removed(p), await offDevice(p));
  // Made once: the private key is wiped once the server has started, and a reload keeps the verifier.
  const proof = new ProofVerifier({ serverPrivateKey: cfg.privateKey, serverPublicKey: dev.publicKey!, nonces: registry.nonces });
  const handlerFor = (secrets: Secrets, live: LiveSettings) =>
    apiHandler(
      cfg,
      { registry, forwards, publicKey, onRegistered, onRemoved, readiness, proof, secrets, live, node, reload: (t) => reload(t) },
      log,
    );
  const secrets = { authToken: cfg.authToken, adminToken: cfg.adminToken };
  const live = startSettings(cfg);
  const api = await listenApi(handlerFor(secrets, live), cfg.apiListen, cfg.tls);
  cleanup.push(() => api.close(cfg.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS));
  node.api = apiUrl(api);
  if (registry.fleet) {
    const beat = await startHeartbeat(registry.fleet, node, log);
    cleanup.push(() => beat.stop());
  }
  const sources: ReloadSources = { tls: cfg.tls, authTokenFile: cfg.tokenFiles?.auth, adminTokenFile: cfg.tokenFiles?.admin };
  const settingsFile = cfg.settingsFile && { file: cfg.settingsFile.file, read: cfg.settingsFile.read, nat, log: cfg.settingsFile.logger };
  const reload = reloader({ sources, api, secrets, settings: live, settingsFile, handlerFor, log });
  // Expired leases go now and then on a timer, by the same path as DELETE /v1/register.
  const expiry = startLeaseExpiry({ registry, manager: forwards, onRemoved, logger: log });
  cleanup.push(() => expiry.stop());
  return { registry, device: dev, udp, nat, api, forwards, publicKey, reload, close: () => cleanup.unwind() };
}

/** The device serves, and the forwards listen again. */
async function bringUp(dev: Device, registry: Registry, forwards: ForwardManager, log: Logger): Promise<void> {
  dev.up();
  // After a restart the peers' sessions are gone, and a client would notice only when its
  // own timers give up on them (15 s). Reaching out to the recently active ones first
  // brings their traffic back within a round trip.
  for (const peer of dev.peers()) if (peer.endpoint) dev.initiateHandshake(peer);
  const restored = await restoreForwards(registry, forwards, log);
  if (restored.open + restored.failed > 0) log.info(`port forwards: ${restored.open} listening again, ${restored.failed} not`);
}

/** The settings a reload may change, as the server starts with them. */
function startSettings(cfg: ServerConfig): LiveSettings {
  return {
    allowLan: cfg.nat?.allowLan ?? false,
    allowDest: cfg.nat?.allowDest ?? [],
    logLevel: cfg.settingsFile?.logger.level ?? 'info',
    maxFlows: cfg.nat?.maxFlows ?? DEFAULT_MAX_FLOWS,
    maxFlowsPerPeer: cfg.nat?.maxFlowsPerPeer ?? DEFAULT_MAX_FLOWS_PER_PEER,
    registerRate: cfg.rateLimit?.burst ?? DEFAULT_REGISTER_RATE,
  };
}

function newDevice(cfg: ServerConfig, maxPeers: number, count: number, log: Logger): Device {
  if (count > maxPeers) log.warn(`the registry holds ${count} peers, more than --max-peers ${maxPeers}: all are kept, none is added`);
  return new Device({ mtu: cfg.mtu, maxPeers: Math.max(maxPeers, count), logger: log });
}

/** Puts every registered peer back on the device and records their handshakes; returns the server's public key. */
function loadPeers(
  dev: Device,
  cfg: ServerConfig,
  peers: PeerRecord[],
  registry: Registry,
  log: Logger,
  touched: (publicKey: string) => void,
): string {
  dev.setPrivateKey(cfg.privateKey);
  const publicKey = keyToBase64(dev.publicKey!);
  for (const p of peers) {
    if (p.publicKey === publicKey) {
      throw new Error(
        `the registry ${registry.location} holds a peer with the server's own public key; was the server key changed? Remove that peer first`,
      );
    }
    dev.setPeer(parseKeyBase64(p.publicKey), { allowedIps: peerRoutes(p), replaceAllowedIps: true, endpoint: recentEndpoint(p) });
  }
  dev.on('handshake-complete', (peer) => {
    const key = keyToBase64(peer.publicKey);
    registry.touch(key, Date.now(), peer.endpoint?.toString() ?? null).then(
      () => touched(key),
      (err: unknown) => log.warn(`cannot record a handshake in ${registry.location}: ${(err as Error).message}`),
    );
  });
  return publicKey;
}

async function startNatFor(dev: Device, registry: Registry, cfg: ServerConfig, log: Logger): Promise<ReadyNat> {
  const pool = registry.pool;
  // Loaded only when asked for: the NAT brings the TUN addon, which `up`'s first stage never needs.
  const { startNat } = await import('./nat/index.js');
  return startNat(
    dev,
    {
      ...cfg.nat!,
      mtu: cfg.mtu,
      gateway4: `${pool.server4}/${pool.subnet4.cidr.prefix}`,
      gateway6: `${pool.server6}/${pool.subnet6.cidr.prefix}`,
      serverPools: [pool.subnet4.text, pool.subnet6.text],
      // The data plane cuts and seals offloaded super-packets in every mode (workers 0: inline).
      offload: true,
      // A queue per shard: each reads and writes its own.
      queues: Math.max(cfg.workers ?? 0, 1),
    },
    log,
  );
}

/**
 * Its sessions, staged packets and routes go with it: the key's handshakes are refused from now on.
 * Its flows through the NAT too: its addresses go back to the pool, and the next peer to get them
 * must not receive what the old connections still bring.
 */
function peerRemover(dev: Device, nat: ReadyNat | null, log: Logger): (p: PeerRecord) => Promise<void> {
  return async (p) => {
    dev.removePeer(parseKeyBase64(p.publicKey));
    if (!nat) return;
    try {
      const n = await nat.closeFlowsFrom([p.address4, p.address6]);
      if (n > 0) log.info(`cut ${n} NAT flow(s) of the removed peer ${p.publicKey.slice(0, 8)}…`);
    } catch (err) {
      log.warn(`could not cut the NAT flows of the removed peer ${p.publicKey.slice(0, 8)}…: ${(err as Error).message}`);
    }
  };
}

function apiHandler(
  cfg: ServerConfig,
  s: {
    registry: Registry;
    forwards: ForwardManager;
    publicKey: string;
    onRegistered: (p: PeerRecord) => void;
    onRemoved: (p: PeerRecord) => Promise<void>;
    readiness: ApiOptions['readiness'];
    proof: ProofVerifier;
    secrets: Secrets;
    live: LiveSettings;
    node: NodeInfo;
    reload: (trigger: string) => Promise<ReloadAnswer>;
  },
  log: Logger,
): ReturnType<typeof createApiHandler> {
  const { registry } = s;
  return createApiHandler({
    registry,
    authToken: s.secrets.authToken,
    serverPublicKey: s.publicKey,
    serverEndpoint: cfg.wgEndpoint,
    serverEndpoints: cfg.wgEndpoints,
    mtu: cfg.mtu,
    dns: cfg.dns ?? [registry.pool.server4, registry.pool.server6],
    persistentKeepalive: PERSISTENT_KEEPALIVE,
    // A settings file's rate is the one in force (a reload changes it); a new handler starts its buckets afresh.
    rateLimit: cfg.settingsFile ? { burst: s.live.registerRate, perMinute: s.live.registerRate } : cfg.rateLimit,
    trustedProxies: cfg.trustedProxies,
    logger: log,
    onRegistered: s.onRegistered,
    onRemoved: s.onRemoved,
    readiness: s.readiness,
    reload: () => s.reload('POST /v1/reload'),
    node: s.node,
    forwards: {
      manager: s.forwards,
      // Seen nonces live in the registry: a proof captured before a restart stays spent after it.
      proof: s.proof,
      adminToken: s.secrets.adminToken,
    },
  });
}

/** What /readyz checks: the registry takes a write, WireGuard's socket is bound, the NAT (if any) is up. */
function readinessChecks(
  cfg: ServerConfig,
  writable: ReadinessCheck,
  udp: { readonly port: number },
  nat: ReadyNat | null,
): Record<string, ReadinessCheck> {
  const fds = cfg.wgSockets ?? [];
  const checks: Record<string, ReadinessCheck> = { registry: writable, wireguard: wireGuardBound(fds, () => udp.port) };
  if (nat) checks.nat = () => nat.ready();
  return checks;
}

/**
 * Connects the device to the WireGuard sockets (stage 1's, else bound here) and, with a
 * NAT, to its TUN, as the cage does: attachDevice, whose shards run in workers or, with
 * workers 0, inline on the main thread; shard k reads and writes TUN queue k and socket k.
 * Without a NAT there is no TUN: the device only answers handshakes and keepalives, on
 * the main thread, over one socket.
 */
async function attachUdp(dev: Device, nat: Nat | null, cfg: ServerConfig, log: Logger): Promise<Attachment> {
  const fds = cfg.wgSockets;
  const workers = nat ? (cfg.workers ?? 0) : 0;
  if (fds && fds.length !== Math.max(workers, 1)) {
    throw new Error(`stage 1 handed over ${fds.length} WireGuard socket(s) for ${Math.max(workers, 1)} data-plane shard(s)`);
  }
  const { host, port } = cfg.wgListen;
  const socket = fds ? { udpFds: fds } : { listenPort: port, listenAddress: host === '0.0.0.0' || host === '::' ? undefined : host };
  nat?.tun.onError((err) => log.error(`NAT TUN ${nat.tun.name}: ${err.message}`));
  try {
    return await attachDevice(dev, nat?.tun ?? null, { ...socket, workers });
  } catch (err) {
    throw new Error(`WireGuard cannot listen on udp ${formatListen(cfg.wgListen)}: ${(err as Error).message}`, { cause: err });
  }
}

async function serveMetrics(
  at: string,
  s: {
    device: Device;
    plane: DataPlane | null;
    registry: Registry;
    node: NodeInfo;
    forwards: ForwardManager;
    nat: ReadyNat | null;
    readiness: () => Promise<Readiness>;
  },
): Promise<{ close(): Promise<void> }> {
  // Loaded only when asked for: prom-client costs tens of milliseconds of start-up.
  const { engineMetrics, MetricsServer } = await import('@wirecage/metrics');
  const { registerServerMetrics } = await import('./metrics.js');
  const m = engineMetrics(s.device, { labels: { device: s.nat?.tun.name ?? 'wirecagesrv' }, plane: s.plane ?? undefined });
  registerServerMetrics(m.registry, s);
  try {
    // /readyz here too, for a probe that reaches the metrics port but not the API (one implementation: api/readyz.ts).
    return await MetricsServer.listen(at, m.registry, { '/readyz': readyzListener(s.readiness) });
  } catch (err) {
    throw new Error(`metrics cannot listen on ${at}: ${(err as Error).message}`, { cause: err });
  }
}

/** Where to reach a peer after a restart: its last endpoint if it shook hands within Reject-After-Time x 3 (sessions live no longer). */
function recentEndpoint(p: PeerRecord): Endpoint | null {
  if (!p.lastEndpoint || !p.lastSeen || Date.now() - p.lastSeen.getTime() > 540_000) return null;
  try {
    return Endpoint.parse(p.lastEndpoint);
  } catch {
    return null;
  }
}
