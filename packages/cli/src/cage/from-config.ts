// Turns a parsed wg-quick file and the `run` flags into the CageSpec for
// stage 2: resolves endpoint names (outside the cage, with the host's
// resolver), picks DNS servers, and lists what the command must not see.
import { availableParallelism } from 'node:os';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { execFileSync } from 'node:child_process';
import { AllowedIps, formatCidr, formatIp, keyToBase64, parseCidr } from '@wirecage/wg-engine';
import { parseListenAddress } from '@wirecage/metrics';
import type { WgQuickConfig } from '../config/wg-quick.js';
import { formatEndpoint } from '../config/summary.js';
import { HOST_RESOLVER_PATHS, hostNameservers } from './resolver.js';
import { ensureRuntimeDir, runtimeDir } from './runtime-dir.js';
import { isPrivatePath, mountTarget, sealCage } from './seal.js';
import type { CageSpec } from './spec.js';
import { configDir } from '../servers/config.js';

export class RunError extends Error {}

export interface RunOptions {
  configPath: string;
  command: string[];
  dns?: string[];
  dnsOverride: boolean;
  mtu?: number;
  tun: string;
  user?: string;
  waitHandshake: number;
  metricsListen?: string;
  /** Shard workers; default: one per CPU, at most 8. */
  workers?: number;
  /** TUN offloads (TSO/USO) when there are workers; default on. */
  offload?: boolean;
  logLevel: CageSpec['logLevel'];
  /** More files the command must not see (a server's key file). */
  hide?: string[];
  /** --root: uid 0 in the command's own user namespace, with capabilities there only. */
  root?: boolean;
  /** --share PATH: paths bound read-write into the cage. */
  share?: string[];
  sshAgent?: boolean;
  gui?: boolean;
  audio?: boolean;
}

export async function buildSpec(cfg: WgQuickConfig, opts: RunOptions): Promise<CageSpec> {
  const peers = [];
  for (const p of cfg.peers) {
    let endpoint: string | undefined;
    let endpointText: string | undefined;
    if (p.endpoint) {
      endpointText = formatEndpoint(p.endpoint);
      let address = p.endpoint.host;
      if (!isIP(address)) {
        try {
          address = (await lookup(address)).address;
        } catch {
          throw new RunError(`${cfg.file}:${p.line}: Endpoint: cannot resolve "${p.endpoint.host}"`);
        }
      }
      endpoint = formatEndpoint({ host: address, port: p.endpoint.port });
    }
    peers.push({
      publicKey: keyToBase64(p.publicKey),
      presharedKey: p.presharedKey ? keyToBase64(p.presharedKey) : undefined,
      endpoint,
      endpointText,
      allowedIps: p.allowedIps.map(formatCidr),
      persistentKeepalive: p.persistentKeepalive,
    });
  }

  const hostEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) hostEnv[k] = v;
  if (opts.user && opts.root) throw new RunError('--root and --user exclude each other: --root runs the command as uid 0, --user as that user');
  const user = opts.user ? lookupUser(opts.user) : undefined;
  const cwd = process.cwd();
  const { seal, env } = sealCage({
    root: opts.root ?? false,
    share: opts.share ?? [],
    sshAgent: opts.sshAgent ?? false,
    gui: opts.gui ?? false,
    audio: opts.audio ?? false,
    cwd,
    env: hostEnv,
    caller: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    user,
  });
  const runtime = runtimeDir();
  ensureRuntimeDir(runtime);
  // Paths under the cage's private directories are gone there anyway, unless a shared path brings
  // them back (a config in the working directory under /tmp); a hiding mount would otherwise only
  // cover what the cage makes there (its resolv.conf under /run/systemd/resolve).
  const shared = (p: string) => seal.shares.some((s) => p === s.target || p.startsWith(`${s.target}/`));
  const hide = [opts.configPath, ...(opts.hide ?? []), configDir(), runtime, ...HOST_RESOLVER_PATHS].filter((p) => {
    const target = mountTarget(p);
    return !isPrivatePath(target) || shared(target);
  });

  const command = opts.command.length > 0 ? opts.command : [process.env.SHELL || '/bin/sh', '-i'];
  return {
    tun: opts.tun,
    mtu: opts.mtu ?? cfg.interface.mtu ?? 1420,
    privateKey: keyToBase64(cfg.interface.privateKey),
    listenPort: cfg.interface.listenPort,
    addresses: cfg.interface.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
    peers,
    dns: chooseDns(cfg, opts),
    command: { file: command[0]!, args: command.slice(1) },
    env,
    cwd,
    waitHandshakeSeconds: opts.waitHandshake,
    user,
    hide,
    seal,
    runtimeDir: runtime,
    metricsListen: opts.metricsListen === undefined ? undefined : checkMetricsListen(opts.metricsListen),
    workers: opts.workers ?? Math.min(availableParallelism(), 8),
    offload: opts.offload ?? true,
    logLevel: opts.logLevel,
  };
}

function chooseDns(cfg: WgQuickConfig, opts: RunOptions): CageSpec['dns'] {
  const search = cfg.interface.dns.search;
  if (opts.dns && opts.dns.length) {
    for (const d of opts.dns) if (!isIP(d)) throw new RunError(`--dns ${d}: not an IP address`);
    return { servers: opts.dns, search };
  }
  if (cfg.interface.dns.servers.length) return { servers: cfg.interface.dns.servers, search };
  if (!opts.dnsOverride) return null;
  // No DNS given: the host's resolvers will do if the tunnel routes them (a resolver on loopback, such as systemd-resolved's, cannot be reached from the cage).
  const routes = new AllowedIps<true>();
  for (const p of cfg.peers) for (const c of p.allowedIps) routes.insert(c, true);
  const usable = hostNameservers().filter((s) => {
    const c = parseCidr(s);
    return routes.lookup(c.family, c.address) === true && !isLoopback(s);
  });
  if (usable.length === 0) {
    throw new RunError(
      `${cfg.file}: no DNS = in [Interface], and the host's resolvers cannot be reached through the tunnel; add DNS = <server address> (or pass --dns)`,
    );
  }
  return { servers: usable, search };
}

// Checked here so a typo fails before any namespace exists.
function checkMetricsListen(addr: string): string {
  let port: number;
  try {
    port = parseListenAddress(addr).port;
  } catch (err) {
    throw new RunError(`--metrics-listen: ${(err as Error).message}`);
  }
  if (port === 0) throw new RunError(`--metrics-listen ${addr}: give a fixed port (Prometheus could not find port 0)`);
  return addr;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

function lookupUser(user: string): { uid: number; gid: number; groups: number[] } {
  if (process.getuid?.() !== 0) throw new RunError('--user needs wirecage to be started as root');
  const id = (args: string[]) => execFileSync('id', [...args, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  try {
    return { uid: Number(id(['-u'])), gid: Number(id(['-g'])), groups: id(['-G']).split(/\s+/).map(Number) };
  } catch {
    throw new RunError(`--user ${user}: no such user`);
  }
}

