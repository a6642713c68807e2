// Stage 2 of `wirecage run`: runs as root inside the user namespace that
// wirecage-userns made, still in the caller's network namespace (the tunnel's
// outer UDP uses the host network). It builds the cage's network namespace,
// its TUN and routes, brings the tunnel up, waits for the handshake, then
// spawns the command into the cage and exits with its status. When the
// handshake fails with a registration `run NAME` had stored, it registers
// again (once) and starts over, before any command ran. A named cage (`run
// --name`) runs its commands by joining a holder process instead, and lives
// while any process is in it (named-cage.ts).
//
// This is a lean entry point (no oclif): it reads its CageSpec from fd 3.
import { closeSync } from 'node:fs';
import {
  CleanupStack,
  NetnsError,
  Rtnl,
  createNetns,
  readSpec,
  spawnInCage,
  exitStatusToCode,
  exitCodeForSpawnError,
  type BindMount,
  type CagedProcess,
} from '@wirecage/netns';
import { Tun } from '@wirecage/tun';
import {
  Device,
  Endpoint,
  UapiServer,
  UdpBind,
  createLogger,
  parseCidr,
  parseKeyBase64,
  type Logger,
  type Peer,
} from '@wirecage/wg-engine';
import { attachDevice, type Attachment } from '@wirecage/wg-engine/data-plane';
import { EXIT_WIRECAGE_FAILED, FORWARDED_SIGNALS, type CageSpec } from './spec.js';
import { resolverMounts } from './resolver-mounts.js';
import { cageEnv, sealedSpawnOptions } from './sealed-spawn.js';
import { cageFile, listCages } from './runtime-dir.js';
import { claimName, recordUnnamedCage } from './named.js';
import { WirecageError, expectedFailure, reportFailure } from '../errors.js';
import type { Healing } from './heal.js';
import { waitForFirstHandshake } from './first-handshake.js';
import { peerEndpoints } from '../servers/server-endpoints.js';

class CageError extends WirecageError {
  override name = 'CageError';
}

/** The spec's --log-level once read: debug shows an internal error's stack. */
let logLevel: CageSpec['logLevel'] | undefined;

/** No handshake in time: with a stored registration, the cue to register again. */
class HandshakeTimeout extends CageError {
  constructor(
    /** "no WireGuard handshake with HOST:PORT within N s", for messages that go on differently. */
    readonly what: string,
  ) {
    super(`${what} (is the server up and the key registered?)`);
  }
}

async function main(): Promise<number> {
  let spec = readSpec<CageSpec>();
  logLevel = spec.logLevel;
  const log = createLogger(spec.logLevel, { format: spec.logFormat, name: 'wirecage' });
  // A named cage's name is taken first (its lock held until we exit), before any namespace exists.
  if (spec.named) await claimName(spec.runtimeDir, spec.named.name);
  for (;;) {
    const cleanups = new CleanupStack();
    let failed: HandshakeTimeout;
    try {
      return await runCage(spec, log, cleanups);
    } catch (err) {
      if (!(err instanceof HandshakeTimeout)) throw err;
      if (spec.registeredAgain) {
        throw new CageError(
          `${err.what}, neither with the registration stored in ${spec.registeredAgain} nor with the one made just now: is the server's WireGuard port reachable from here?`,
        );
      }
      if (!spec.reregister) throw err;
      failed = err;
    } finally {
      await cleanups.unwind((err) => log.debug(`cleanup: ${(err as Error).message}`));
    }
    // Everything of the first try is gone (namespace, TUN, sockets): the second starts clean.
    spec = await registerAgain(spec, failed);
  }
}

/** As stage 1 words its warnings (the logger's "warn:" is for the engine's own messages). */
function warn(spec: CageSpec, message: string): void {
  if (spec.logLevel !== 'silent' && spec.logLevel !== 'error') process.stderr.write(`wirecage: warning: ${message}\n`);
}

/**
 * The server no longer knows the stored answer (the client was removed, its lease ended, the
 * registry was lost): register afresh and return the spec built from the new answer.
 */
async function registerAgain(spec: CageSpec, failed: HandshakeTimeout): Promise<CageSpec> {
  const again = spec.reregister!;
  // Loaded only now: most runs never talk to the API from here.
  const [{ registerAfresh }, { networkSpec }] = await Promise.all([import('../servers/register.js'), import('./network-spec.js')]);
  let network;
  try {
    const fresh = await registerAfresh(again.server, Buffer.from(spec.privateKey, 'base64'));
    if (fresh.warning) warn(spec, fresh.warning);
    network = await networkSpec(fresh.config, again);
  } catch (err) {
    const expected = expectedFailure(err);
    if (!expected) throw err;
    throw new CageError(
      `${failed.what} with the registration stored in ${again.server.leaseFile}, and registering again failed: ${expected.message}`,
    );
  }
  warn(
    spec,
    `${failed.what} with the registration stored in ${again.server.leaseFile} (has the server forgotten this client?): registered again with ${again.server.apiUrl}`,
  );
  return { ...spec, ...network, reregister: undefined, registeredAgain: again.server.leaseFile };
}

async function runCage(spec: CageSpec, log: Logger, cleanups: CleanupStack): Promise<number> {
  const { netnsFd, tun } = openCageNetwork(spec, cleanups);
  // Loaded only with --flow-log; set up before the command can open a flow.
  if (spec.flowLog) await (await import('./flow-log.js')).startFlowLog({ ...spec, flowLog: spec.flowLog }, netnsFd, cleanups, log);
  const { device, peers } = buildDevice(spec, log);
  cleanups.push(() => device.close());
  tun.onError((err) => log.error(`TUN ${tun.name}: ${err.message}`));
  await serveControl(spec, device, tun.name, cleanups);
  const attached = await connect(spec, device, tun, peers, cleanups, log);
  await serveMetrics(spec, log, device, tun.name, attached, cleanups);
  // Registering again is for a failed handshake only: the token is not needed past this point.
  delete spec.reregister;
  // From here on the tunnel follows the server's name and the host's network changes (heal.ts),
  // loaded while the command starts rather than before; a command that ends first does not wait
  // for the load (tens of milliseconds on a busy machine) only to stop what it would start.
  let ended = false;
  let healing: Healing | undefined;
  void import('./heal-cage.js').then(
    ({ startCageHealing }) => {
      if (!ended) healing = startCageHealing(spec, device, peers, log, tun.name);
    },
    (err: Error) => log.error(`the tunnel will not heal itself: ${err.message}`),
  );
  cleanups.push(() => {
    ended = true;
    healing?.stop();
  });

  const mounts = [...spec.seal.shares, ...resolverMounts(spec, tun.name, cleanups)];
  const started = spec.named
    ? await (await import('./named-cage.js')).startNamedCage(spec, netnsFd, tun.name, mounts, cleanups, log)
    : await startCommand(spec, netnsFd, tun.name, mounts);
  if (typeof started === 'number') return started;
  // --on-publish (servers/on-publish.ts), once the command runs: it needs the cage's network only.
  if (spec.onPublish) void import('../servers/on-publish.js').then((m) => m.runOnPublish(spec, { netnsFd, tunName: tun.name, mounts }));
  return started.wait();
}

function openCageNetwork(spec: CageSpec, cleanups: CleanupStack): { netnsFd: number; tun: Tun } {
  // The cage's network: a new namespace held by an fd; no thread of ours enters it.
  const netnsFd = createNetns();
  cleanups.push(() => closeSync(netnsFd));
  // Deleted with the namespace, in the kernel's background, rather than by the TUN's last close on
  // the way out of every cage (tens of milliseconds). One queue per shard: each shard reads and
  // writes its own (the kernel keeps a flow on one queue), and the inline shard of --workers 0 one.
  const tun = Tun.open({
    name: spec.tun,
    netnsFd,
    mtu: spec.mtu,
    offload: spec.offload,
    queues: Math.max(spec.workers, 1),
    deleteWithNetns: true,
  });
  cleanups.push(() => tun.close());
  configureNetwork(spec, netnsFd, tun.name);
  return { netnsFd, tun };
}

function configureNetwork(spec: CageSpec, netnsFd: number, tunName: string): void {
  const nl = Rtnl.open(netnsFd);
  try {
    nl.setUp('lo');
    nl.setMtu(tunName, spec.mtu);
    const families = new Set(spec.addresses.map((a) => parseCidr(a).family));
    if (!families.has(6)) nl.disableIpv6LinkLocal(tunName);
    for (const a of spec.addresses) nl.addAddress(tunName, a);
    nl.setUp(tunName);
    const seen = new Set<string>();
    for (const p of spec.peers) {
      for (const a of p.allowedIps) {
        const c = parseCidr(a);
        // A family without an address gets no route at all: it fails at once instead of hanging.
        if (!families.has(c.family)) continue;
        const key = `${c.address.toString('hex')}/${c.prefix}`;
        if (seen.has(key)) continue;
        seen.add(key);
        try {
          nl.addRoute({ to: a, dev: tunName });
        } catch (err) {
          // Address = 10.0.0.2/24 with AllowedIPs = 10.0.0.0/24: the kernel already routes the
          // address's prefix to the tunnel (every route of the cage is on it), as wg-quick accepts.
          if (!(err instanceof NetnsError && err.code === 'EEXIST')) throw err;
        }
      }
    }
  } finally {
    nl.close();
  }
}

type HandshakePeer = { peer: Peer; endpoint?: string };

function buildDevice(spec: CageSpec, log: Logger): { device: Device; peers: HandshakePeer[] } {
  const device = new Device({ mtu: spec.mtu, logger: log });
  device.setPrivateKey(parseKeyBase64(spec.privateKey, 'PrivateKey'));
  const peers: HandshakePeer[] = [];
  for (const p of spec.peers) {
    const peer = device.setPeer(parseKeyBase64(p.publicKey, 'PublicKey'), {
      presharedKey: p.presharedKey ? parseKeyBase64(p.presharedKey, 'PresharedKey') : null,
      endpoint: p.endpoint ? Endpoint.parse(p.endpoint) : null,
      allowedIps: p.allowedIps.map((a) => parseCidr(a)),
      persistentKeepalive: p.persistentKeepalive ?? 0,
    });
    peers.push({ peer, endpoint: p.endpointText ?? p.endpoint });
  }
  return { device, peers };
}

/**
 * Brings the tunnel up and waits for the first handshake, then wires the data plane. The handshake
 * needs the main thread only, while a shard worker takes ~100 ms of CPU to start (a Node isolate
 * with the engine): had the shards come first, the handshake's answer would wait in a shard's
 * socket until that shard ran. So with workers and one peer, the handshake runs over node:dgram on
 * the port, which it leaves free again before the plane binds its SO_REUSEPORT group there (one
 * socket per shard); the shards start alongside the command, and what it sends meanwhile waits in
 * the TUN's queues. With several peers the plane comes first, as the others' answers (or
 * initiations) may arrive after the first handshake, when the port changes hands, and a lost one is
 * retried only after Rekey-Timeout (5 s).
 */
async function connect(
  spec: CageSpec,
  device: Device,
  tun: Tun,
  peers: HandshakePeer[],
  cleanups: CleanupStack,
  log: Logger,
): Promise<Attachment> {
  const attach = async (listenPort: number) => {
    const attached = await attachDevice(device, tun, { listenPort, workers: spec.workers });
    cleanups.push(() => attached.close());
    return attached;
  };
  if (spec.workers === 0 || spec.peers.length > 1) {
    const attached = await attach(spec.listenPort ?? 0);
    device.up();
    await waitForHandshake(spec, device, peers, log);
    return attached;
  }
  const bind = await UdpBind.open(device, { port: spec.listenPort ?? 0 });
  let bound = true;
  const unbind = () => {
    if (bound) bind.close();
    bound = false;
  };
  cleanups.push(unbind);
  device.up();
  await waitForHandshake(spec, device, peers, log);
  // dgram closes the fds at once: the port is free for the plane's sockets, and the group they form
  // holds only them (a socket of dgram's, without SO_REUSEPORT, would refuse them all).
  unbind();
  return attach(bind.port);
}

/** The control socket `wg` talks to: there from before the handshake, as a `wg show` may ask why it fails. */
async function serveControl(spec: CageSpec, device: Device, tunName: string, cleanups: CleanupStack): Promise<void> {
  listCages(spec.runtimeDir); // sweeps what killed cages left behind
  const uapi = await UapiServer.listen(device, tunName, { path: cageFile(spec.runtimeDir, tunName, process.pid, 'sock') });
  cleanups.push(() => uapi.close());
}

/** The metrics endpoint, when asked for: after the data plane, whose counters it serves. */
async function serveMetrics(
  spec: CageSpec,
  log: Logger,
  device: Device,
  tunName: string,
  attached: Attachment,
  cleanups: CleanupStack,
): Promise<void> {
  if (!spec.metricsListen) return;
  // Loaded only when asked for: prom-client costs tens of milliseconds of start-up.
  const { MetricsServer, engineMetrics, processMetrics } = await import('@wirecage/metrics');
  const { registry } = engineMetrics(device, { labels: { device: tunName }, plane: attached.plane ?? undefined });
  processMetrics(registry);
  // Stage 2 is still in the caller's network namespace: scrapers on the host reach it, the cage does not.
  const metrics = await MetricsServer.listen(spec.metricsListen, registry);
  cleanups.push(() => metrics.close());
  log.info(`metrics at ${metrics.url}`);
}

/**
 * Spawns the command into the cage, forwarding our signals to it; wait() gives its exit code. When
 * it cannot start, the exit code for why, already reported.
 */
async function startCommand(
  spec: CageSpec,
  netnsFd: number,
  tunName: string,
  mounts: BindMount[],
): Promise<{ wait(): Promise<number> } | number> {
  let child: CagedProcess;
  try {
    child = spawnInCage({
      ...sealedSpawnOptions(spec, netnsFd, mounts),
      file: spec.command.file,
      args: spec.command.args,
      env: cageEnv(spec, tunName),
      cwd: spec.cwd,
    });
  } catch (err) {
    // Not an expected failure: the boundary below reports it, after the cleanups.
    if (!expectedFailure(err)) throw err;
    await report(err);
    return exitCodeForSpawnError(err);
  }
  for (const sig of FORWARDED_SIGNALS) {
    process.on(sig, () => {
      child.kill(sig);
    });
  }
  recordUnnamedCage(spec, tunName, child.pid);
  return { wait: async () => exitStatusToCode(await child.wait()) };
}

/** The first handshake; a peer whose endpoint is silent moves along its candidates (first-handshake.ts). */
function waitForHandshake(spec: CageSpec, device: Device, peers: HandshakePeer[], log: Logger): Promise<void> {
  const initiators = peers.filter((p) => p.peer.endpoint);
  if (initiators.length === 0) throw new CageError('no [Peer] has an Endpoint: the cage would have no way out');
  // A run of a server has its one peer, and the stored answer lists every node of its fleet.
  const leaseFile = peers.length === 1 ? spec.recheck?.leaseFile : undefined;
  const endpointsOf = (p: HandshakePeer) => () => peerEndpoints(leaseFile, p.endpoint ?? p.peer.endpoint!.toString());
  return waitForFirstHandshake(
    device,
    initiators.map((p) => ({ peer: p.peer, endpoints: endpointsOf(p) })),
    spec.waitHandshakeSeconds,
    { log, timeout: (where) => new HandshakeTimeout(`no WireGuard handshake with ${where} within ${spec.waitHandshakeSeconds} s`) },
  );
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => process.exit(await report(err)),
);

/** Stage 2's error boundary (errors.ts), with doctor's advice when the error is one of the machine's causes doctor checks. */
async function report(err: unknown): Promise<number> {
  const code = reportFailure(err, { failureExit: EXIT_WIRECAGE_FAILED, stack: logLevel === 'debug', stackHint: '--log-level debug' });
  // Loaded for a failure only: a cage that starts needs none of doctor's checks.
  const { cageStartAdvice } = await import('../doctor/cage-start.js');
  const advice = cageStartAdvice(err);
  if (advice) process.stderr.write(`wirecage: ${advice}\n`);
  return code;
}
