// The labs of bench/server.bench.ts. A throughput path is three namespaces:
// a cage in `cli` (`wirecage run -c FILE -- sleep infinity`), the server in
// `srv`, and the "lab host" in `inet` running `iperf3 -s` on 10.99.1.2,
// which the server reaches over a veth (10.99.1.0/24). The server is one of
//   userspace  wirecagesrv up (the default userspace NAT)
//   kernel     wirecagesrv up --nat kernel (started with `ip netns exec srv`)
//   wg-go      wireguard-go with ip_forward and an nftables masquerade (the anchor)
// and the cage is the same client in all three, so only the server differs.
// The wirecagesrv cages register through the API (curl) and get a wg-quick
// file from the answer; the anchor's cage gets the same file by hand.
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, Netns } from '@wirecage/tests/lib/netns.js';
import type { LabProcess } from '@wirecage/tests/lib/process.js';
import { waitFor } from '@wirecage/tests/lib/wait.js';
import { SRV_BIN, untilHealthy } from '@wirecage/tests/lib/srv-lab.js';

export { SRV_BIN };
import { cageKey, writeWgQuick } from '@wirecage/tests/lib/cage.js';
import { writeSecretFile } from '@wirecage/tests/lib/wg.js';
import { startWireguardGo } from '@wirecage/tests/lib/wireguard-go.js';
import { startCage, type Endpoint } from './endpoint.js';
import { cmdline, descendants, exePath } from './procfs.js';

export type ServerSetup = 'userspace' | 'kernel' | 'wg-go';
export const SETUPS: ServerSetup[] = ['userspace', 'kernel', 'wg-go'];
export const ANCHOR_SETUP: ServerSetup = 'wg-go';
export const SETUP_TITLES: Record<ServerSetup, string> = {
  userspace: 'wirecagesrv, userspace NAT',
  kernel: 'wirecagesrv --nat kernel',
  'wg-go': 'wireguard-go + nft masquerade',
};

const NODE = realpathSync(process.execPath);
const TOKEN = 'bench-token-server-0123456789';
const MTU = 1420;
export const LAB_HOST = '10.99.1.2';

/** A cage behind a server, the server's process and where iperf3 -s listens. */
export interface ServerPath {
  setup: ServerSetup;
  cage: Endpoint;
  /** The server process whose CPU time counts: wirecagesrv's stage 2, or wireguard-go. */
  serverPid: number;
  target: string;
}

/** A running `wirecagesrv up` in a lab namespace. */
export interface LabServer {
  process: LabProcess;
  /** Stage 2: the process that serves the API and WireGuard and holds the registry. */
  stage2: number;
  api: string;
  token: string;
}

/** Starts `wirecagesrv up` in `srv` with the API on `apiHost`, and waits until the API answers from `client`. */
export async function startWirecagesrv(srv: Netns, client: Netns, apiHost: string, dir: string, extra: string[]): Promise<LabServer> {
  const tokenFile = await writeSecretFile(dir, 'token', `${TOKEN}\n`);
  const args = [
    SRV_BIN,
    'up',
    '--auth-token-file',
    tokenFile,
    '--wg-listen',
    '0.0.0.0:51820',
    '--wg-endpoint',
    `${apiHost}:51820`,
    '--api-listen',
    `${apiHost}:8443`,
    '--insecure-http',
    '--state',
    join(dir, `registry-${Date.now()}.db`),
    '--log-level',
    'warn',
    ...extra,
  ];
  const proc = srv.spawn(process.execPath, args, { env: { PATH: process.env.PATH, HOME: dir } });
  const api = `http://${apiHost}:8443`;
  await untilHealthy(client, proc, `${api}/healthz`, [], 20_000);
  const stage2 = descendants(proc.pid!).find((p) => {
    try {
      return exePath(p) === NODE && cmdline(p).some((a) => a.endsWith('/stage2/main.js'));
    } catch {
      return false;
    }
  });
  if (stage2 === undefined)
    throw new Error(
      `wirecagesrv in ${srv.name} answers, but its stage 2 (node .../stage2/main.js) is not among pid ${proc.pid}'s descendants`,
    );
  return { process: proc, stage2, api, token: TOKEN };
}

/** VmRSS (resident now) in bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(m[1]) * 1024;
}

interface Registration {
  client_address: string;
  server_public_key: string;
  server_endpoint: string;
}

async function register(client: Netns, server: LabServer, publicKey: string): Promise<Registration> {
  // The token goes in the body, on stdin: never in argv.
  const body = JSON.stringify({ token: server.token, client_public_key: publicKey });
  const r = await client.runOrThrow(
    'curl',
    [
      '-sS',
      '--fail-with-body',
      '--max-time',
      '5',
      '-H',
      'Content-Type: application/json',
      '--data-binary',
      '@-',
      `${server.api}/v1/register`,
    ],
    { input: body },
  );
  return JSON.parse(r.stdout) as Registration;
}

export async function buildServerPath(lab: Lab, setup: ServerSetup, cageFlags: string[]): Promise<ServerPath> {
  const cli = await lab.namespace('cli');
  const srv = await lab.namespace('srv');
  const inet = await lab.namespace('inet');
  const srvAddr = (await lab.veth(srv, cli, { v6: false })).a.v4!;
  await lab.veth(srv, inet, { v4: ['10.99.1.1/24', `${LAB_HOST}/24`], v6: false });
  inet.spawn('iperf3', ['-s']);
  const dir = await lab.tempDir();
  const key = await cageKey(dir, 'cage');

  let serverPid: number;
  let iface: Record<string, string | number>;
  let peer: Record<string, string>;
  if (setup === 'wg-go') {
    const wg = await startWireguardGo(srv, { addresses: ['10.200.100.1/24'], mtu: MTU });
    await wg.setPeer({ publicKey: key.publicKey, allowedIps: ['10.200.100.2/32'] });
    await srv.sysctl('net.ipv4.ip_forward', 1);
    await srv.runOrThrow('nft', ['-f', '-'], {
      input: `table ip anchor {\n  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname != "${wg.ifname}" ip saddr 10.200.100.0/24 masquerade\n  }\n}\n`,
    });
    serverPid = wg.process.pid!;
    iface = { PrivateKey: key.privateKey, Address: '10.200.100.2/32', DNS: '10.200.100.1', MTU };
    peer = { PublicKey: wg.publicKey, Endpoint: wg.endpoint(srvAddr), AllowedIPs: '0.0.0.0/0' };
  } else {
    const nat = setup === 'kernel' ? ['--nat', 'kernel'] : [];
    const server = await startWirecagesrv(srv, cli, srvAddr, dir, [
      '--allow-dest',
      '10.99.1.0/24',
      '--dns-upstream',
      `${LAB_HOST}:53`,
      ...nat,
    ]);
    const reg = await register(cli, server, key.publicKey);
    serverPid = server.stage2;
    iface = { PrivateKey: key.privateKey, Address: reg.client_address.replace(/\/\d+$/, '/32'), DNS: '10.200.100.1', MTU };
    peer = { PublicKey: reg.server_public_key, Endpoint: reg.server_endpoint, AllowedIPs: '0.0.0.0/0' };
  }
  const config = await writeWgQuick(dir, 'cage.conf', iface, [peer]);
  const cage = await startCage({
    ns: cli,
    config,
    address: String(iface.Address).split('/')[0]!,
    command: ['sleep', 'infinity'],
    flags: cageFlags,
  }).ready();
  await waitFor(async () => (await inet.run('ss', ['-Hltn', 'sport = :5201'])).stdout.trim() !== '', {
    what: `iperf3 -s in ${inet.name}`,
    timeoutMs: 10_000,
  });
  // The gateway answers ping in every setup: the tunnel is up once it does.
  await waitFor(async () => (await cage.exec('ping', ['-n', '-c', '1', '-W', '1', '10.200.100.1'])).code === 0, {
    what: `a ping from the cage through ${setup} to its gateway`,
    timeoutMs: 15_000,
  });
  return { setup, cage, serverPid, target: LAB_HOST };
}
