// `wirecagesrv peers list` and `peers remove` against a running server, in a
// lab (tests/lib/srv-lab.ts; its internet and LAN are not used here): a
// wireguard-go client in the client namespace registers with curl and passes
// traffic to the server's gateway; the real commands (the built bin, run in
// the client namespace) list it and remove it; then the server no longer
// knows the key: the old session is dead, a new handshake is refused (the
// engine counts it as an unknown peer), and the key may register again.
// The last case runs the commands against a second server over HTTPS.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labLeaf } from '@wirecage/netns/lab';
import type { ExecResult } from '../lib/exec.js';
import type { LabProcess } from '../lib/process.js';
import { startFixture } from '../lib/cage.js';
import {
  GATEWAY4,
  INET4,
  SRV_BIN,
  SRV_TOKEN as TOKEN,
  startWirecagesrv,
  scrapeMetric,
  untilHealthy,
  type Registration,
} from '../lib/srv-lab.js';
import { apiRequest, setServerPeer, untilHandshakeRefused, wgClientUp } from '../lib/srv-client.js';
import { srvSuite } from '../lib/srv-suite.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';
import { startWireguardGo, type WireguardGoPeer } from '../lib/wireguard-go.js';

const ADMIN = 'lab-admin-peers-0123456789';
const TICKS = fileURLToPath(new URL('./fixtures/tick-server.mjs', import.meta.url));
const METRICS = '127.0.0.1:9588';

describe('wirecagesrv peers list / remove, nodes', function () {
  this.timeout(120_000);
  const s = srvSuite({
    built: [
      'apps/wirecagesrv/dist/commands/peers/list.js',
      'apps/wirecagesrv/dist/commands/peers/remove.js',
      'apps/wirecagesrv/dist/commands/nodes.js',
    ],
  });

  let adminFile: string;
  let server: LabProcess;
  let go: WireguardGoPeer;
  let reg: Registration;

  before(async () => {
    adminFile = await writeSecretFile(s.l.dir, 'admin', `${ADMIN}\n`);
    server = await startWirecagesrv(s.l, ['--admin-token-file', adminFile, '--metrics-listen', METRICS]);
    go = await startWireguardGo(s.l.cli);
  });

  /** The real `wirecagesrv peers ...` in the client namespace; the admin token file comes from WIRECAGESRV_ADMIN_TOKEN_FILE unless `args` names one. */
  const peers = (args: string[], opts: { api?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> =>
    admin(['peers', ...args], opts);
  const admin = (args: string[], opts: { api?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> =>
    s.l.cli.run(process.execPath, [SRV_BIN, ...args, '--api', opts.api ?? `http://${s.l.srvAddr}:8443`], {
      env: { PATH: process.env.PATH, HOME: s.l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile, ...opts.env },
      timeoutMs: 30_000,
    });

  const register = (base?: string, curl?: string[]) =>
    apiRequest(s.l, 'POST', '/v1/register', [`Authorization: Bearer ${TOKEN}`], { client_public_key: go.publicKey }, { base, curl });

  /** The value of one series on the server's /metrics (scraped inside the server namespace). */
  const metric = (re: RegExp) => scrapeMetric(s.l.srv, METRICS, re);
  const devicePeers = () => metric(/^wireguard_peers\{[^}]*\} (\d+)$/m);
  const natFlows = () => metric(/^wirecagesrv_nat_active_flows\{[^}]*\} (\d+)$/m);

  /** Forgets wireguard-go's session with the server, so any handshake it reports afterwards is a new one. */
  const freshSession = () => setServerPeer(go, reg);

  async function handshakeCompletes(): Promise<void> {
    await waitFor(
      async () => {
        server.assertRunning();
        // Any packet into the tunnel makes wireguard-go initiate.
        await s.l.cli.run('ping', ['-n', '-c', '1', '-W', '1', GATEWAY4], { timeoutMs: 3000 });
        return go.latestHandshake(reg.server_public_key);
      },
      {
        what: 'a completed handshake between wireguard-go and wirecagesrv',
        timeoutMs: 15_000,
        intervalMs: 200,
        describe: async () => `${await go.show()}\n${server.describe()}`,
      },
    );
  }

  const ping = () => s.l.cli.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', GATEWAY4], { timeoutMs: 10_000 });

  it('a wireguard-go client registers and passes traffic; `peers list` shows it, as a table and as JSON', async () => {
    const r = await register();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    reg = r.body as unknown as Registration;
    await wgClientUp(s.l, go, reg);
    await handshakeCompletes();
    const p = await ping();
    assert.match(p.stdout, / 0% packet loss/, p.stdout);

    const list = await peers(['list']);
    assert.equal(list.code, 0, list.stderr);
    const [header, row, ...rest] = list.stdout.trimEnd().split('\n');
    assert.match(header!, /^PUBLIC KEY +ADDRESS +ADDRESS6 +FORWARDS +LAST HANDSHAKE +ENDPOINT +REGISTERED +LEASE EXPIRES$/);
    assert.deepEqual(rest, []);
    const cells = row!.split(/ {2,}/);
    assert.deepEqual(cells.slice(0, 4), [go.publicKey, '10.200.100.2', 'fd7a:5e:60::2', '0'], row);
    assert.match(cells[4]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/, 'the last handshake');
    assert.match(cells[5]!, new RegExp(`^[0-9.]+:${go.listenPort}$`), 'where it came from');
    assert.match(cells[7]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/, 'when the lease ends');

    // The token file given by flag instead of WIRECAGESRV_ADMIN_TOKEN_FILE.
    const json = await peers(['list', '--json', '--admin-token-file', adminFile], { env: { WIRECAGESRV_ADMIN_TOKEN_FILE: undefined } });
    assert.equal(json.code, 0, json.stderr);
    const entries = JSON.parse(json.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      entries.map((e) => [e.client_public_key, e.client_address, e.client_address6, e.forwards]),
      [[go.publicKey, '10.200.100.2', 'fd7a:5e:60::2', 0]],
    );

    // One server with a registry of its own is its one node, holding the session just made.
    const nodes = await admin(['nodes']);
    assert.equal(nodes.code, 0, nodes.stderr);
    const [nodesHeader, node, ...more] = nodes.stdout.trimEnd().split('\n');
    assert.match(nodesHeader!, /^NAME +ENDPOINT +API +SESSIONS +STARTED +HEARTBEAT +LIVE$/);
    assert.deepEqual(more, []);
    const nodeCells = node!.split(/ {2,}/);
    assert.deepEqual([nodeCells[1], nodeCells[3], nodeCells[6]], [`${s.l.srvAddr}:51820`, '1', 'yes'], node);
  });

  it('`peers remove KEY` removes it: its flows through the NAT are cut, the session is dead, a new handshake is refused, and `peers list` no longer shows it', async () => {
    // A connection to a lab host through the NAT, open while the peer is removed: the address
    // goes back to the pool, so the next peer to get it must not receive what this one brings.
    const ticks = await startFixture(s.l.inet, TICKS, [INET4, '7100']);
    await s.l.cli.runOrThrow('ip', ['route', 'add', '10.99.1.0/24', 'dev', go.ifname]);
    let removed: string;
    const holder = s.l.cli.spawn(process.execPath, [
      '-e',
      `require('net').connect(7100, '${INET4}').on('data', () => {}).on('error', () => {}); setTimeout(() => {}, 60000)`,
    ]);
    try {
      await waitFor(() => ticks.output().includes('connected '), {
        what: 'the connection through the NAT',
        timeoutMs: 10_000,
        describe: () => ticks.describe(),
      });
      assert.equal(await natFlows(), 1);
      const rm = await peers(['remove', go.publicKey]);
      assert.equal(rm.code, 0, rm.stderr);
      removed = rm.stdout;
      await waitFor(() => /^ended \S+ reset$/m.test(ticks.output()), {
        what: 'the lab host to see the connection reset',
        timeoutMs: 5_000,
        describe: () => `${ticks.describe()}\n${server.describe()}`,
      });
      assert.equal(await natFlows(), 0, 'no flow of the removed peer is left');
      assert.match(server.output(), /cut 1 NAT flow\(s\) of the removed peer/);
    } finally {
      await holder.stop();
      await ticks.stop();
    }
    assert.equal(removed, `removed ${go.publicKey}\n`);
    assert.equal(await devicePeers(), 0, 'the peer is off the WireGuard device');

    // The session wireguard-go still holds is gone on the server: nothing comes back.
    const dead = await ping();
    assert.match(dead.stdout, / 100% packet loss/, dead.stdout);

    // A new handshake reaches the server and is refused there: the key is unknown.
    await untilHandshakeRefused(s.l, server, go, reg, METRICS, 'the removed key');
    assert.equal(await go.latestHandshake(reg.server_public_key), null, 'no handshake completed');

    const list = await peers(['list']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, 'no peers are registered\n');
    const json = await peers(['list', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), []);

    const again = await peers(['remove', go.publicKey]);
    assert.equal(again.code, 1);
    assert.equal(
      again.stderr,
      `wirecagesrv: http://${s.l.srvAddr}:8443/v1/register refused to remove the peer ${go.publicKey}: HTTP 404: no peer is registered with the key ${go.publicKey}\n`,
    );
  });

  it('the removed key registers again and passes traffic', async () => {
    const r = await register();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.client_address, reg.client_address, 'the freed address is handed out again');
    await freshSession();
    await handshakeCompletes();
    const p = await ping();
    assert.match(p.stdout, / 0% packet loss/, p.stdout);
  });

  it("refuses without the admin token (exit 2), with the registration token (exit 1, the server's reason), and a bad key (exit 2)", async () => {
    const none = await peers(['list'], { env: { WIRECAGESRV_ADMIN_TOKEN_FILE: undefined } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^wirecagesrv: the admin token is required: --admin-token-file FILE \(or WIRECAGESRV_ADMIN_TOKEN_FILE\)/);
    const asClient = await peers(['list'], { env: { WIRECAGESRV_ADMIN_TOKEN_FILE: s.l.tokenFile } });
    assert.equal(asClient.code, 1);
    assert.equal(
      asClient.stderr,
      `wirecagesrv: http://${s.l.srvAddr}:8443/v1/peers refused to list the peers: HTTP 401: listing peers needs the admin token (wirecagesrv up --admin-token-file)\n`,
    );
    // The name of the last release still works, for one release, with a warning naming the new one.
    const legacy = await peers(['list', '--json'], { env: { WIRECAGESRV_ADMIN_TOKEN_FILE: undefined, ADMIN_TOKEN_FILE: adminFile } });
    assert.equal(legacy.code, 0, legacy.stderr);
    assert.match(
      legacy.stderr,
      /^wirecagesrv: warning: ADMIN_TOKEN_FILE is deprecated and will stop working in the next release: set WIRECAGESRV_ADMIN_TOKEN_FILE instead\n$/,
    );
    const badKey = await peers(['remove', 'not-a-key']);
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /KEY is not a WireGuard key/);
    const unreachable = await peers(['list'], { api: `http://${s.l.srvAddr}:9` });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot list the peers at http:\/\/[0-9.]+:9\/v1\/peers: connect ECONNREFUSED/);
  });

  it('talks to an HTTPS API with --ca-file, and refuses a certificate it cannot verify', async () => {
    const dir = await s.lab.tempDir();
    const { cert, key } = labLeaf(dir, 'wirecagesrv.lab', `IP:${s.l.srvAddr}`);
    const api = `https://${s.l.srvAddr}:8445`;
    const tls = s.l.srv.spawn(
      process.execPath,
      [
        SRV_BIN,
        'up',
        '--auth-token-file',
        s.l.tokenFile,
        '--admin-token-file',
        adminFile,
        '--wg-listen',
        '0.0.0.0:51822',
        '--wg-endpoint',
        `${s.l.srvAddr}:51822`,
        '--api-listen',
        `${s.l.srvAddr}:8445`,
        '--tls-cert',
        cert,
        '--tls-key',
        key,
        '--state',
        join(dir, 'state', 'registry.db'),
      ],
      { env: { PATH: process.env.PATH, HOME: dir } },
    );
    await untilHealthy(s.l.cli, tls, `${api}/healthz`, ['--cacert', cert]);
    assert.equal((await register(api, ['--cacert', cert])).status, 200);

    const list = await peers(['list', '--json', '--ca-file', cert], { api });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { client_public_key: string }[]).map((p) => p.client_public_key),
      [go.publicKey],
    );
    const untrusted = await peers(['list'], { api });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, new RegExp(`^wirecagesrv: cannot list the peers at ${api}/v1/peers: .*(self-signed|SELF_SIGNED)`));
    const rm = await peers(['remove', go.publicKey, '--ca-file', cert], { api });
    assert.equal(rm.code, 0, rm.stderr);
    const exit = await tls.stop();
    assert.equal(exit.code, 0, tls.describe());
  });
});
