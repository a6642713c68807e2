// Turns a parsed wg-quick file and the `run` flags into the CageSpec for
// stage 2: the tunnel's part (network-spec.ts: endpoint names resolved
// outside the cage, DNS servers), and what the command must not see.
import { availableParallelism } from 'node:os';
import { parseHostPort } from '@wirecage/wg-engine/config';
import type { WgQuickConfig } from '../config/wg-quick.js';
import { HOST_RESOLVER_PATHS } from './resolver.js';
import { networkSpec } from './network-spec.js';
import { RunError } from './run-error.js';
import { ensureRuntimeDir, runtimeDir } from './runtime-dir.js';
import { isPrivatePath, mountTarget, sealCage } from './seal.js';
import { DEFAULT_LINGER_SECONDS, type CageSpec } from './spec.js';
import { configDir } from '../servers/config.js';
import { lookupUser } from './user-lookup.js';

export { RunError };

export interface RunOptions {
  configPath: string;
  command: string[];
  dns?: string[];
  dnsOverride: boolean;
  mtu?: number;
  tun: string;
  user?: string;
  waitHandshake: number;
  /** --reresolve-after: seconds; default the file's ReresolveAfter, else 60. */
  reresolveAfter?: number;
  /** --linger: seconds; default the file's Linger, else DEFAULT_LINGER_SECONDS. */
  linger?: number;
  metricsListen?: string;
  /** Shard workers; default: one per CPU, at most 8. */
  workers?: number;
  /** TUN offloads (TSO/USO) when there are workers; default on. */
  offload?: boolean;
  logLevel: CageSpec['logLevel'];
  logFormat?: CageSpec['logFormat'];
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
  const network = await networkSpec(cfg, opts);
  const hostEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) hostEnv[k] = v;
  if (opts.user && opts.root)
    throw new RunError('--root and --user exclude each other: --root runs the command as uid 0, --user as that user');
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
    ...network,
    command: { file: command[0]!, args: command.slice(1) },
    env,
    cwd,
    waitHandshakeSeconds: opts.waitHandshake,
    // The flag, else the file's ReresolveAfter, else a minute.
    reresolveAfterSeconds: opts.reresolveAfter ?? cfg.interface.reresolveAfter ?? 60,
    lingerSeconds: opts.linger ?? cfg.interface.linger ?? DEFAULT_LINGER_SECONDS,
    user,
    hide,
    seal,
    runtimeDir: runtime,
    metricsListen: opts.metricsListen === undefined ? undefined : checkMetricsListen(opts.metricsListen),
    workers: opts.workers ?? Math.min(availableParallelism(), 8),
    offload: opts.offload ?? true,
    logLevel: opts.logLevel,
    logFormat: opts.logFormat ?? 'text',
  };
}

// Checked here so a typo fails before any namespace exists. The grammar is @wirecage/metrics'
// parseListenAddress (names, ":port"), parsed without importing metrics: that would load prom-client.
function checkMetricsListen(addr: string): string {
  let port: number;
  try {
    port = parseHostPort(addr, { what: '--metrics-listen', names: true, anyHost: true, portZero: true }).port;
  } catch (err) {
    throw new RunError((err as Error).message);
  }
  if (port === 0) throw new RunError(`--metrics-listen ${addr}: give a fixed port (Prometheus could not find port 0)`);
  return addr;
}
