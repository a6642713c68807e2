// The wirecagesrv NAT lab: a client namespace where `wirecage` runs, a server
// namespace running `wirecagesrv up`, an "internet" namespace (10.99.1.0/24,
// fd7a:99:1::/64, opened with --allow-dest) and a LAN behind the server
// (192.168.99.0/24) that the egress policy refuses. Shared by the server
// suites (tests/server) and cage/server-name.test.ts; a suite may leave the
// internet or the LAN unused.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabCert } from '@wirecage/netns/lab';
import { run, type ExecResult } from './exec.js';
import { WIRECAGE_BIN } from './cage.js';
import { nsRun, type Lab, type Netns } from './netns.js';
import type { LabProcess } from './process.js';
import { packageBin, packageDir } from './package-bin.js';
import { waitFor } from './wait.js';
import { writeSecretFile } from './wg.js';

export const SRV_APP = packageDir('wirecagesrv');
export const SRV_BIN = packageBin('wirecagesrv');
export const SRV_TOKEN = 'lab-token-nat-0123456789';

/** The internet host and the server's addresses facing it. */
export const INET4 = '10.99.1.2';
export const INET6 = 'fd7a:99:1::2';
export const SRV_INET4 = '10.99.1.1';
export const SRV_INET6 = 'fd7a:99:1::1';
/** The server's LAN address, and a host on that LAN. */
export const SRV_LAN = '192.168.99.1';
export const LAN_HOST = '192.168.99.2';
/** The server's pools (--subnet is the default) and gateway addresses. */
export const GATEWAY4 = '10.200.100.1';
export const SUBNET6 = 'fd7a:5e:60::/64';
export const GATEWAY6 = 'fd7a:5e:60::1';

export interface SrvLab {
  lab: Lab;
  srv: Netns;
  cli: Netns;
  inet: Netns;
  lan: Netns;
  /** The server's address on the client's veth: its API and WireGuard endpoint. */
  srvAddr: string;
  dir: string;
  /** The environment for `wirecage` (HOME and XDG_CONFIG_HOME in `dir`). */
  env: NodeJS.ProcessEnv;
  tokenFile: string;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Builds the namespaces and links; checks the builds the suites run (the server's stage 2 and the
 * CLI's add-server, and `built`: more files, relative to the repository, that a suite's feature
 * needs, so a stale build fails with a clear message).
 */
export async function srvLab(lab: Lab, opts: { built?: string[] } = {}): Promise<SrvLab> {
  assertSrvBuilt(opts.built);
  const srv = await lab.namespace('srv');
  const cli = await lab.namespace('cli');
  const inet = await lab.namespace('inet');
  const lan = await lab.namespace('lan');
  const srvAddr = (await lab.veth(srv, cli, { v6: false })).a.v4!;
  await lab.veth(srv, inet, { v4: [`${SRV_INET4}/24`, `${INET4}/24`], v6: [`${SRV_INET6}/64`, `${INET6}/64`] });
  await lab.veth(srv, lan, { v4: [`${SRV_LAN}/24`, `${LAN_HOST}/24`], v6: false });
  const dir = await lab.tempDir();
  const env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') };
  const tokenFile = await writeSecretFile(dir, 'token', `${SRV_TOKEN}\n`);
  return { lab, srv, cli, inet, lan, srvAddr, dir, env, tokenFile };
}

/**
 * What starting a server and talking to it need of a lab: the server's namespace and address, the
 * client's namespace, a directory and the token file. A fleet lab (srv-fleet.ts) has one per node.
 */
export type SrvSide = Pick<SrvLab, 'srv' | 'cli' | 'srvAddr' | 'dir' | 'tokenFile'>;

/** Throws, naming the file, unless the server's stage 2, the CLI's add-server and `more` (relative to the repository) are built. */
export function assertSrvBuilt(more: string[] = []): void {
  for (const f of ['apps/wirecagesrv/dist/stage2/main.js', 'packages/cli/dist/commands/add-server.js', ...more]) {
    if (!existsSync(join(REPO, f))) throw new Error(`${join(REPO, f)} is missing: build first (npx turbo run build)`);
  }
}

/** Another user to run the server as, with its own ports and state. */
export interface SrvUser {
  uid: number;
  home: string;
  token: string;
}

/** How `startWirecagesrv` runs the server, beyond the lab's flags. */
export interface SrvStart {
  /** More `up` flags. */
  args?: string[];
  /** Run as another user, with its own ports (51821, 8444) and state. */
  as?: SrvUser;
  /** --state; by default state/registry.db in the home (the lab's dir, or the user's). */
  state?: string;
  /** --allow-dest for the lab's internet (default true); false leaves the egress policy refusing every lab address. */
  allowInternet?: boolean;
  /** More environment, e.g. WG_PRIVATE_KEY_B64. */
  env?: NodeJS.ProcessEnv;
  /** --wg-endpoint; default `srvAddr:port` (a fleet's node lists every node). */
  wgEndpoint?: string;
}

/**
 * `wirecagesrv up` in the server namespace (API and WireGuard on `srvAddr`, --subnet6 SUBNET6),
 * once its API answers /healthz. `extra` is a list of more flags, or the whole SrvStart.
 */
export async function startWirecagesrv(l: SrvSide, extra: string[] | SrvStart = [], as?: SrvUser): Promise<LabProcess> {
  const o: SrvStart = Array.isArray(extra) ? { args: extra, as } : extra;
  const [wg, api, home, token] = o.as ? [51821, 8444, o.as.home, o.as.token] : [51820, 8443, l.dir, l.tokenFile];
  const internet = o.allowInternet === false ? [] : ['--allow-dest', '10.99.1.0/24', '--allow-dest', 'fd7a:99:1::/64'];
  const up = [
    SRV_BIN,
    'up',
    '--auth-token-file',
    token,
    '--wg-listen',
    `0.0.0.0:${wg}`,
    '--wg-endpoint',
    o.wgEndpoint ?? `${l.srvAddr}:${wg}`,
    // The lab's API is plain HTTP on a veth address: said so explicitly (up refuses it otherwise).
    '--api-listen',
    `${l.srvAddr}:${api}`,
    '--insecure-http',
    '--state',
    o.state ?? join(home, 'state', 'registry.db'),
    '--subnet6',
    SUBNET6,
    ...internet,
    ...(o.args ?? []),
  ];
  const env = { PATH: process.env.PATH, HOME: home, ...o.env };
  const p = o.as
    ? l.srv.spawn('setpriv', [`--reuid=${o.as.uid}`, `--regid=${o.as.uid}`, '--clear-groups', process.execPath, ...up], { env })
    : l.srv.spawn(process.execPath, up, { env });
  return untilHealthy(l.cli, p, `http://${l.srvAddr}:${api}/healthz`);
}

/** Resolves with the server `p` once `url` (its /healthz) answers 200 to curl in `from`; rejects if `p` exits first. */
export async function untilHealthy(
  from: Netns,
  p: LabProcess,
  url: string,
  curlArgs: string[] = [],
  timeoutMs = 15_000,
): Promise<LabProcess> {
  const httpCode = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', ...curlArgs, url];
  await waitFor(
    async () => {
      p.assertRunning();
      return (await from.run('curl', httpCode)).stdout === '200';
    },
    { what: `wirecagesrv to answer ${url} in ${from.name}`, timeoutMs, intervalMs: 100, describe: () => p.describe() },
  );
  return p;
}

/** `wirecage add-server NAME` for the server's API on `port`. */
export async function addServer(l: Pick<SrvLab, 'srvAddr' | 'env'>, name: string, port = 8443): Promise<void> {
  const add = await run(
    process.execPath,
    [WIRECAGE_BIN, 'add-server', name, `http://${l.srvAddr}:${port}`, '--insecure-http', '--token', SRV_TOKEN],
    { env: l.env },
  );
  if (add.code !== 0) throw new Error(`wirecage add-server ${name} failed: ${add.stderr}`);
}

/** `cmd` in a cage of `wirecage run NAME` (each run registers: registrations are rate-limited per source). */
export function runCaged(l: SrvLab, cmd: string[], opts: { server?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', opts.server ?? 'lab', '--wait-handshake', '10', '--', ...cmd], {
    env: l.env,
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}

/** The answer of POST /v1/register: the server's own type. */
export type { RegisterResponse as Registration } from 'wirecagesrv';

/** A server's /metrics text at `listen`, scraped from `ns`. */
export async function scrapeMetrics(ns: Netns, listen: string): Promise<string> {
  return (await ns.runOrThrow('curl', ['-sS', '--max-time', '5', `http://${listen}/metrics`])).stdout;
}

/** The value of the one series matching `re` (its value the first group) on a server's /metrics at `listen`, scraped from `ns`. */
export async function scrapeMetric(ns: Netns, listen: string, re: RegExp): Promise<number> {
  const text = await scrapeMetrics(ns, listen);
  const m = re.exec(text);
  if (!m) throw new Error(`no series matches ${re} in:\n${text}`);
  return Number(m[1]);
}

/**
 * `wirecagesrv up` serving its API over HTTPS with `tls` (its --tls-cert/--tls-key; `trust` is the
 * CA or self-signed certificate curl checks /healthz with), on the lab's ports, as startWirecagesrv.
 */
export async function startWirecagesrvTls(
  l: SrvLab,
  tls: Pick<LabCert, 'cert' | 'key'>,
  trust: string,
  extra: { args?: string[]; state?: string } = {},
): Promise<LabProcess> {
  const up = [
    SRV_BIN,
    'up',
    '--auth-token-file',
    l.tokenFile,
    '--wg-listen',
    '0.0.0.0:51820',
    '--wg-endpoint',
    `${l.srvAddr}:51820`,
    '--api-listen',
    `${l.srvAddr}:8443`,
    '--tls-cert',
    tls.cert,
    '--tls-key',
    tls.key,
    '--state',
    extra.state ?? join(l.dir, 'state', 'registry.db'),
    '--subnet6',
    SUBNET6,
    ...(extra.args ?? []),
  ];
  const p = l.srv.spawn(process.execPath, up, { env: { PATH: process.env.PATH, HOME: l.dir } });
  return untilHealthy(l.cli, p, `https://${l.srvAddr}:8443/healthz`, ['--cacert', trust]);
}
