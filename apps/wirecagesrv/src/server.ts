// wirecagesrv put together: the registry, a WireGuard device on a UDP port
// holding every registered peer, and the API that registers more. Peers are
// loaded from the registry at start, so a restart keeps all of them.
// Decrypted packets go to the NAT (nat/), when one is asked for.
import { Device, Endpoint, keyToBase64, parseCidr, parseKeyBase64, silentLogger, UdpBind, type Logger } from '@wirecage/wg-engine';
import { attachDevice, type DataPlane } from '@wirecage/wg-engine/data-plane';
import { createApiHandler, type ApiOptions } from './api/routes.js';
import { startLeaseExpiry } from './api/lease-expiry.js';
import { listenApi, type ApiListen, type ApiServer, type TlsFiles } from './api/listen.js';
import type { RateLimitOptions } from './api/caller.js';
import { ProofVerifier } from './api/proof.js';
import { readinessOf, type ReadinessCheck } from './api/readyz.js';
import { natUp, registryWritable, wireGuardBound } from './api/readiness-checks.js';
import { DEFAULT_FORWARD_PORTS, ForwardManager, restoreForwards, type PortRange } from './forwards/index.js';
import { formatListen, type ListenAddress } from './listen.js';
import type { Nat, NatOptions } from './nat/index.js';
import { connectTunnel } from './nat/tunnel.js';
import { InheritedUdp } from './stage2/inherited-udp.js';
import { Registry, type PeerRecord } from './registry/index.js';
import { CleanupStack } from '@wirecage/netns';

export const PERSISTENT_KEEPALIVE = 25;
export const DEFAULT_MAX_PEERS = 1024;

export interface ServerConfig {
  privateKey: Buffer;
  authToken: string;
  /** host:port told to clients. */
  wgEndpoint: string;
  wgListen: ListenAddress;
  /** WireGuard sockets already bound (by stage 1); wgListen is then only named in messages. */
  wgSockets?: { fd4: number | null; fd6: number | null };
  apiListen: ApiListen;
  tls?: TlsFiles;
  statePath: string;
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
  /** Address the public ports of forwards are bound on. Default 0.0.0.0. */
  forwardListenAddress?: string;
  /** The public ports forwards may take. Default 20000-29999 (DEFAULT_FORWARD_PORTS). */
  forwardPorts?: PortRange;
  /** Where decrypted packets go; without it they are dropped. The userspace NAT needs root in a user namespace (stage 2). */
  nat?: NatOptions;
  /**
   * Data-plane shard workers between the NAT's TUN and the WireGuard socket (needs the NAT and one
   * inherited socket); 0 keeps the data path on the main thread. Default 0.
   */
  workers?: number;
  /** Serve Prometheus metrics (engine, data plane, registry, NAT) at http://ADDR/metrics. */
  metricsListen?: string;
  logger?: Logger;
}

export interface RunningServer {
  registry: Registry;
  device: Device;
  udp: { readonly port: number; close(): void | Promise<void> };
  nat: Nat | null;
  api: ApiServer;
  forwards: ForwardManager;
  publicKey: string;
  close(): Promise<void>;
}

function peerRoutes(p: PeerRecord) {
  return [parseCidr(`${p.address4}/32`), parseCidr(`${p.address6}/128`)];
}

export async function startServer(cfg: ServerConfig): Promise<RunningServer> {
  const log = cfg.logger ?? silentLogger;
  const registry = Registry.open({ path: cfg.statePath, subnet: cfg.subnet, subnet6: cfg.subnet6, maxPeers: cfg.maxPeers ?? DEFAULT_MAX_PEERS, leaseMs: cfg.leaseMs, logger: log });
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
  const forwards = new ForwardManager({ listenAddress: cfg.forwardListenAddress, ports: cfg.forwardPorts ?? DEFAULT_FORWARD_PORTS, logger: log });
  const peers = registry.list();
  const dev = newDevice(cfg, registry.maxPeers, peers.length, log);
  cleanup.push(() => dev.down());
  const publicKey = loadPeers(dev, cfg, peers, registry, log);
  const nat = cfg.nat ? await startNatFor(dev, registry, cfg, log) : null;
  if (nat) {
    cleanup.push(() => nat.close());
    forwards.setNatNetns(nat.netnsFd);
  }
  const udp = await attachUdp(dev, nat, cfg, log);
  cleanup.push(() => udp.close());
  cleanup.push(() => forwards.closeAll());
  if (cfg.metricsListen) {
    const metrics = await serveMetrics(cfg.metricsListen, { device: dev, plane: udp.plane ?? null, registry, forwards, nat });
    cleanup.push(() => metrics.close());
  }
  dev.up();
  // After a restart the peers' sessions are gone, and a client would notice only when its
  // own timers give up on them (15 s). Reaching out to the recently active ones first
  // brings their traffic back within a round trip.
  for (const peer of dev.peers()) if (peer.endpoint) dev.initiateHandshake(peer);

  const restored = await restoreForwards(registry, forwards, log);
  if (restored.open + restored.failed > 0) log.info(`port forwards: ${restored.open} listening again, ${restored.failed} not`);
  const onRemoved = peerRemover(dev, nat, log);
  const writable = registryWritable(cfg.statePath);
  cleanup.push(() => writable.close());
  const readiness = readinessOf(readinessChecks(cfg, writable, udp, nat));
  const api = await listenApi(apiHandler(cfg, { registry, dev, forwards, publicKey, onRemoved, readiness }, log), cfg.apiListen, cfg.tls);
  cleanup.push(() => api.close());
  // Expired leases go now and then on a timer, by the same path as DELETE /v1/register.
  const expiry = startLeaseExpiry({ registry, manager: forwards, onRemoved, logger: log });
  cleanup.push(() => expiry.stop());
  return { registry, device: dev, udp, nat, api, forwards, publicKey, close: () => cleanup.unwind() };
}

function newDevice(cfg: ServerConfig, maxPeers: number, count: number, log: Logger): Device {
  if (count > maxPeers) log.warn(`the registry holds ${count} peers, more than --max-peers ${maxPeers}: all are kept, none is added`);
  return new Device({ mtu: cfg.mtu, maxPeers: Math.max(maxPeers, count), logger: log });
}

/** Puts every registered peer back on the device and records their handshakes; returns the server's public key. */
function loadPeers(dev: Device, cfg: ServerConfig, peers: PeerRecord[], registry: Registry, log: Logger): string {
  dev.setPrivateKey(cfg.privateKey);
  const publicKey = keyToBase64(dev.publicKey!);
  for (const p of peers) {
    if (p.publicKey === publicKey) {
      throw new Error(`the registry ${cfg.statePath} holds a peer with the server's own public key; was the server key changed? Remove that peer first`);
    }
    dev.setPeer(parseKeyBase64(p.publicKey), { allowedIps: peerRoutes(p), replaceAllowedIps: true, endpoint: recentEndpoint(p) });
  }
  dev.on('handshake-complete', (peer) => {
    try {
      registry.touch(keyToBase64(peer.publicKey), Date.now(), peer.endpoint?.toString() ?? null);
    } catch (err) {
      log.warn(`cannot record a handshake in ${cfg.statePath}: ${(err as Error).message}`);
    }
  });
  return publicKey;
}

async function startNatFor(dev: Device, registry: Registry, cfg: ServerConfig, log: Logger): Promise<Nat> {
  const pool = registry.pool;
  // Loaded only when asked for: the NAT brings the TUN addon, which `up`'s first stage never needs.
  const { startNat } = await import('./nat/index.js');
  return startNat(dev, {
    ...cfg.nat!,
    mtu: cfg.mtu,
    gateway4: `${pool.server4}/${pool.subnet4.cidr.prefix}`,
    gateway6: `${pool.server6}/${pool.subnet6.cidr.prefix}`,
    serverPools: [pool.subnet4.text, pool.subnet6.text],
    offload: planeSocket(cfg) !== undefined,
  }, log);
}

/**
 * Its sessions, staged packets and routes go with it: the key's handshakes are refused from now on.
 * Its flows through the NAT too: its addresses go back to the pool, and the next peer to get them
 * must not receive what the old connections still bring.
 */
function peerRemover(dev: Device, nat: Nat | null, log: Logger): (p: PeerRecord) => Promise<void> {
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
  s: { registry: Registry; dev: Device; forwards: ForwardManager; publicKey: string; onRemoved: (p: PeerRecord) => Promise<void>; readiness: ApiOptions['readiness'] },
  log: Logger,
): ReturnType<typeof createApiHandler> {
  const { registry, dev } = s;
  return createApiHandler({
    registry,
    authToken: cfg.authToken,
    serverPublicKey: s.publicKey,
    serverEndpoint: cfg.wgEndpoint,
    mtu: cfg.mtu,
    dns: cfg.dns ?? [registry.pool.server4, registry.pool.server6],
    persistentKeepalive: PERSISTENT_KEEPALIVE,
    rateLimit: cfg.rateLimit,
    trustedProxies: cfg.trustedProxies,
    logger: log,
    onRegistered: (p) => dev.setPeer(parseKeyBase64(p.publicKey), { allowedIps: peerRoutes(p), replaceAllowedIps: true }),
    onRemoved: s.onRemoved,
    readiness: s.readiness,
    forwards: {
      manager: s.forwards,
      // Seen nonces live in the registry: a proof captured before a restart stays spent after it.
      proof: new ProofVerifier({ serverPrivateKey: cfg.privateKey, serverPublicKey: dev.publicKey!, nonces: registry.nonces }),
      adminToken: cfg.adminToken,
    },
  });
}

/** What /readyz checks: the registry takes a write, WireGuard's socket is bound, the NAT (if any) is up. */
function readinessChecks(cfg: ServerConfig, writable: ReadinessCheck, udp: { readonly port: number }, nat: Nat | null): Record<string, ReadinessCheck> {
  const fds = cfg.wgSockets ? [cfg.wgSockets.fd4, cfg.wgSockets.fd6] : [];
  const checks: Record<string, ReadinessCheck> = { registry: writable, wireguard: wireGuardBound(fds, () => udp.port) };
  if (!nat) return checks;
  const kernelTable = async () => {
    const { tool } = await import('./nat/kernel-host.js');
    const { KERNEL_NFT_TABLE } = await import('./nat/kernel-rules.js');
    return (await tool('nft', ['list', 'table', 'inet', KERNEL_NFT_TABLE])).code === 0;
  };
  checks.nat = natUp(nat, nat.mode === 'kernel' ? kernelTable : undefined);
  return checks;
}

/**
 * Connects the device to the WireGuard socket and, with a NAT, to its TUN: through
 * the sharded data plane when there are workers and stage 1's single socket, else
 * on the main thread (node:dgram and the TUN's own reader).
 */
async function attachUdp(dev: Device, nat: Nat | null, cfg: ServerConfig, log: Logger): Promise<{ readonly port: number; readonly plane?: DataPlane | null; close(): void | Promise<void> }> {
  const one = planeSocket(cfg);
  if (nat && one !== undefined) return attachDevice(dev, nat.tun, { udpFd: one, workers: cfg.workers! });
  const fds = cfg.wgSockets;
  const udp = fds ? InheritedUdp.adopt(dev, fds) : await bindUdp(dev, cfg.wgListen);
  if (nat) connectTunnel(dev, nat.tun, log);
  return udp;
}

async function serveMetrics(
  at: string,
  s: { device: Device; plane: DataPlane | null; registry: Registry; forwards: ForwardManager; nat: Nat | null },
): Promise<{ close(): Promise<void> }> {
  // Loaded only when asked for: prom-client costs tens of milliseconds of start-up.
  const { engineMetrics, MetricsServer } = await import('@wirecage/metrics');
  const { registerServerMetrics } = await import('./metrics.js');
  const m = engineMetrics(s.device, { labels: { device: s.nat?.tun.name ?? 'wirecagesrv' }, plane: s.plane ?? undefined });
  registerServerMetrics(m.registry, s);
  try {
    return await MetricsServer.listen(at, m.registry);
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

/** The inherited socket the sharded plane takes over, when it runs (workers, a NAT, one socket from stage 1). */
function planeSocket(cfg: ServerConfig): number | undefined {
  const fds = cfg.wgSockets;
  if (!cfg.nat || !fds || (cfg.workers ?? 0) === 0 || (fds.fd4 === null) === (fds.fd6 === null)) return undefined;
  return (fds.fd4 ?? fds.fd6)!;
}

async function bindUdp(dev: Device, at: ListenAddress): Promise<UdpBind> {
  const { host, port } = at;
  const wildcard = host === '0.0.0.0' || host === '::';
  if (!wildcard && host.includes(':')) {
    throw new Error(`--wg-listen ${formatListen(at)}: a specific IPv6 address is not supported in-process; use [::]:${port} or an IPv4 address`);
  }
  try {
    return await UdpBind.open(dev, wildcard ? { port } : { port, host4: host, ipv6: false });
  } catch (err) {
    throw new Error(`WireGuard cannot listen on udp ${formatListen(at)}: ${(err as Error).message}`, { cause: err });
  }
}
