// Stage 2 of `wirecagesrv up`: root in a user namespace of its own, still in
// the host's network namespace. It serves the API and WireGuard on the
// sockets stage 1 bound, and makes the NAT's network namespace (which needs
// the privileges it has here and nowhere else). A lean entry point, no oclif:
// it reads its ServerSpec from fd 3.
import { readSpec } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { DEFAULT_REGISTER_RATE, readLiveSettings, type LiveSettings, type ServerLogLevel } from '../config/live-settings.js';
import { switchableLogger, type SwitchableLogger } from '../config/logger.js';
import { apiUrl } from '../api/listen.js';
import { formatListen } from '../listen.js';
import type { NatCounters } from '../nat/index.js';
import { startServer, type RunningServer, type ServerConfig } from '../server.js';
import { configureNotify, notify, notifyStopping, startWatchdog } from '../sd-notify.js';
import { EXIT_FAILED, type ServerSpec } from './spec.js';

async function main(): Promise<number> {
  const spec = readSpec<ServerSpec>();
  // Its level changes on reload when a settings file gives one.
  const log = switchableLogger(spec.logLevel as ServerLogLevel, { format: spec.logFormat, name: 'wirecagesrv' });
  configureNotify(spec.notify, log);
  const stopped = stopSignal(spec);
  const privateKey = Buffer.from(spec.privateKey, 'base64');
  spec.privateKey = '';
  let server: RunningServer | undefined;
  // SIGHUP reloads (the unit's ExecReload sends it); the reload logs its own refusal.
  process.on('SIGHUP', () => {
    if (server) server.reload('SIGHUP').catch(() => {});
    else log.warn('SIGHUP while starting: ignored, the files are being read for the start anyway');
  });
  try {
    server = await startServer(serverConfig(spec, privateKey, log));
  } finally {
    privateKey.fill(0);
  }
  const peers = await server.registry.count();
  logStarted(server, spec, peers, log);
  // Everything serves by now: the API listens, WireGuard is bound, the NAT is up.
  notify(`READY=1\nSTATUS=serving ${peers} peer(s)`);
  startWatchdog();
  const signal = await stopped;
  notifyStopping();
  log.info(`${signal}: shutting down`);
  if (server.nat) logNatCounters(server.nat.counters, log);
  await server.close();
  return 0;
}

/** The first of SIGINT, SIGTERM (or, for the kernel NAT, losing stage 1). */
function stopSignal(spec: ServerSpec): Promise<NodeJS.Signals> {
  // Signals arrive more than once (the process group, and wirecage-userns forwarding): the first stops us.
  let stopping: (sig: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<NodeJS.Signals>((resolve) => (stopping = resolve));
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => stopping(s));
  // Without the userns helper (--nat kernel) nothing ends us with stage 1: notice being orphaned, so the
  // host's forwarding and nftables table are put back even when stage 1 was killed outright.
  const parent = process.ppid;
  if (spec.nat.mode === 'kernel') setInterval(() => process.ppid !== parent && stopping('SIGTERM'), 1000).unref();
  return stopped;
}

function serverConfig(spec: ServerSpec, privateKey: Buffer, log: SwitchableLogger): ServerConfig {
  return {
    privateKey,
    authToken: spec.authToken,
    wgEndpoint: spec.wgEndpoint,
    wgEndpoints: spec.wgEndpoints,
    wgListen: spec.wgListen,
    wgSockets: spec.fds.wg,
    apiListen: { fd: spec.fds.api },
    tls: spec.tls,
    statePath: spec.statePath,
    registry: spec.registry,
    nodeName: spec.nodeName,
    subnet: spec.subnet,
    subnet6: spec.subnet6,
    mtu: spec.mtu,
    maxPeers: spec.maxPeers,
    dns: spec.dns,
    adminToken: spec.adminToken,
    tokenFiles: spec.tokenFiles,
    drainTimeoutMs: spec.drainTimeoutMs,
    forwardListenAddress: spec.forwardListenAddress,
    forwardPorts: spec.forwardPorts,
    nat: spec.nat,
    workers: spec.workers,
    metricsListen: spec.metricsListen,
    rateLimit: spec.registerRate === undefined ? undefined : { burst: spec.registerRate, perMinute: spec.registerRate },
    trustedProxies: spec.trustedProxies,
    leaseMs: spec.leaseMs,
    logger: log,
    settingsFile: spec.settings && {
      file: spec.settings.file,
      read: () => readLiveSettings(spec.settings!, startSettings(spec)),
      logger: log,
    },
  };
}

/** The live settings as stage 1 parsed them: what a setting pinned by a flag or variable keeps. */
function startSettings(spec: ServerSpec): LiveSettings {
  const n = spec.nat;
  const logLevel = spec.logLevel as ServerLogLevel;
  return {
    allowLan: n.allowLan,
    allowDest: n.allowDest,
    logLevel,
    maxFlows: n.maxFlows,
    maxFlowsPerPeer: n.maxFlowsPerPeer,
    registerRate: spec.registerRate ?? DEFAULT_REGISTER_RATE,
  };
}

function logStarted(server: RunningServer, spec: ServerSpec, peers: number, log: Logger): void {
  const pool = server.registry.pool;
  log.info(`public key ${server.publicKey}`);
  log.info(
    `registry ${server.registry.location}: ${peers} peer(s), pools ${pool.subnet4.text} and ${pool.subnet6.text}, server ${pool.server4} and ${pool.server6}`,
  );
  log.info(`WireGuard on udp ${formatListen(spec.wgListen)} (port ${server.udp.port}), clients told ${spec.wgEndpoint}`);
  log.info(`API on ${apiUrl(server.api)}`);
  if (server.nat) {
    const allowed = [spec.nat.allowLan ? 'private ranges' : '', ...spec.nat.allowDest].filter((s) => s !== '');
    log.info(
      `NAT ${server.nat.mode}: egress policy refuses loopback, link-local, multicast${spec.nat.allowLan ? '' : ', private ranges'} and the pools${allowed.length ? `; allowed: ${allowed.join(', ')}` : ''}`,
    );
  }
}

function logNatCounters(c: NatCounters, log: Logger): void {
  log.info(
    `NAT: relayed ${c.tcpFlows} TCP and ${c.udpFlows} UDP flow(s); refused by the egress policy ${c.tcpRefusedByPolicy} TCP, ${c.udpRefusedByPolicy} UDP; ` +
      `by the flow limits ${c.tcpRefusedByLimit} TCP, ${c.udpRefusedByLimit} UDP; ${c.tcpConnectFailures} TCP connect failure(s); ` +
      `ping: ${c.icmpEchoRequests} request(s) in ${c.icmpFlows} flow(s), ${c.icmpEchoReplies} reply(ies), refused ${c.icmpRefusedByPolicy} by policy and ${c.icmpRefusedByLimit} by limits, ${c.icmpDropped} dropped; ` +
      `${c.icmpErrors} ICMP error(s) passed on to peers, ${c.icmpErrorsLimited} over the rate limit`,
  );
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`wirecagesrv: ${err.message}\n`);
    process.exit(EXIT_FAILED);
  },
);
