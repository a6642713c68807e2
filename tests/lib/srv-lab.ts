// The wirecagesrv NAT lab: a client namespace where `wirecage` runs, a server
// namespace running `wirecagesrv up`, an "internet" namespace (10.99.1.0/24,
// fd7a:99:1::/64, opened with --allow-dest) and a LAN behind the server
// (192.168.99.0/24) that the egress policy refuses. Shared by the server
// suites (tests/server) and cage/server-name.test.ts; a suite may leave the
// internet or the LAN unused.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOrThrow, type ExecResult } from './exec.js';
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
  for (const f of ['apps/wirecagesrv/dist/stage2/main.js', 'packages/cli/dist/commands/add-server.js', ...(opts.built ?? [])]) {
    if (!existsSync(join(REPO, f))) throw new Error(`${join(REPO, f)} is missing: build first (npx turbo run build)`);
  }
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
}

/**
 * `wirecagesrv up` in the server namespace (API and WireGuard on `srvAddr`, --subnet6 SUBNET6),
 * once its API answers /healthz. `extra` is a list of more flags, or the whole SrvStart.
 */
export async function startWirecagesrv(l: SrvLab, extra: string[] | SrvStart = [], as?: SrvUser): Promise<LabProcess> {
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
    `${l.srvAddr}:${wg}`,
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
  await waitFor(
    async () => {
      p.assertRunning();
      const r = await l.cli.run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '1',
        `http://${l.srvAddr}:${api}/healthz`,
      ]);
      return r.stdout === '200';
    },
    { what: 'wirecagesrv API to answer /healthz', timeoutMs: 15_000, intervalMs: 100, describe: () => p.describe() },
  );
  return p;
}

/** `wirecage add-server NAME` for the server's API on `port`. */
export async function addServer(l: SrvLab, name: string, port = 8443): Promise<void> {
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

/** The value of the one series matching `re` (its value the first group) on a server's /metrics at `listen`, scraped from `ns`. */
export async function scrapeMetric(ns: Netns, listen: string, re: RegExp): Promise<number> {
  const text = (await ns.runOrThrow('curl', ['-sS', '--max-time', '5', `http://${listen}/metrics`])).stdout;
  const m = re.exec(text);
  if (!m) throw new Error(`no series matches ${re} in:\n${text}`);
  return Number(m[1]);
}

/** A certificate and its key, in PEM files made by `labCertificate`, with the fingerprint `openssl x509 -fingerprint -sha256` prints ("AB:CD:…"). */
export interface LabCert {
  cert: string;
  key: string;
  fingerprint: string;
}

/**
 * openssl in `dir`: a CA (`ca: 'self'` and `isCa`), a server certificate for `san` ("IP:198.18.0.1")
 * signed by `ca`, or a self-signed one (`ca: 'self'`). P-256, valid 2 days.
 */
export async function labCertificate(
  dir: string,
  name: string,
  opts: { san?: string; ca: LabCert | 'self'; isCa?: boolean },
): Promise<LabCert> {
  const [cert, key] = [join(dir, `${name}.pem`), join(dir, `${name}.key`)];
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', key];
  const ext = [
    ...(opts.san ? ['-addext', `subjectAltName=${opts.san}`] : []),
    ...(opts.isCa ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'] : []),
  ];
  if (opts.ca === 'self') {
    await runOrThrow('openssl', ['req', '-x509', ...newKey, ...ext, '-days', '2', '-out', cert]);
  } else {
    const csr = join(dir, `${name}.csr`);
    await runOrThrow('openssl', ['req', '-new', ...newKey, ...ext, '-out', csr]);
    await runOrThrow('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      opts.ca.cert,
      '-CAkey',
      opts.ca.key,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-copy_extensions',
      'copyall',
      '-out',
      cert,
    ]);
  }
  const fp = (await runOrThrow('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', cert])).stdout.trim();
  return { cert, key, fingerprint: fp.replace(/^[^=]*=/, '') };
}

/**
 * `wirecagesrv up` serving its API over HTTPS with `tls` (its --tls-cert/--tls-key; `trust` is the
 * CA or self-signed certificate curl checks /healthz with), on the lab's ports, as startWirecagesrv.
 */
export async function startWirecagesrvTls(
  l: SrvLab,
  tls: LabCert,
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
  await waitFor(
    async () => {
      p.assertRunning();
      const r = await l.cli.run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '1',
        '--cacert',
        trust,
        `https://${l.srvAddr}:8443/healthz`,
      ]);
      return r.stdout === '200';
    },
    { what: 'wirecagesrv HTTPS API to answer /healthz', timeoutMs: 15_000, intervalMs: 100, describe: () => p.describe() },
  );
  return p;
}
