// Leases, replay protection across restarts, the real client behind a
// reverse proxy, and TLS by default, against `wirecagesrv up` in a lab
// (tests/lib/srv-lab.ts; its internet and LAN are not used here):
// - a wireguard-go client registered under `--lease 3s` and holding a port
//   forward is removed when the lease runs out: the forward's port closes,
//   the session dies and a new handshake is refused (the engine counts it as
//   an unknown peer), as after `peers remove`;
// - a Wirecage-Proof used before a restart is refused after it;
// - with `--trusted-proxy` the registration limit keys on X-Forwarded-For,
//   without it the header changes nothing;
// - a plain-HTTP API on a non-loopback address needs --insecure-http (exit 2
//   otherwise), and with it the server warns that tokens travel in clear.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keyProofHeader, keyProofKey, parseKeyBase64 } from '@wirecage/wg-engine';
import type { LabProcess } from '../lib/process.js';
import { GATEWAY4, SRV_BIN, SRV_TOKEN as TOKEN, SUBNET6, startWirecagesrv, scrapeMetric, type Registration } from '../lib/srv-lab.js';
import { apiRequest, untilHandshakeRefused, wgClientUp } from '../lib/srv-client.js';
import { srvSuite } from '../lib/srv-suite.js';
import { waitFor } from '../lib/wait.js';
import { generateKeyPair, writeSecretFile } from '../lib/wg.js';
import { startWireguardGo, type WireguardGoPeer } from '../lib/wireguard-go.js';

const ADMIN = 'lab-admin-lease-0123456789';
const METRICS = '127.0.0.1:9589';
/** Inside the default --forward-ports range. */
const FORWARD_PORT = 20080;

describe('wirecagesrv leases, replayed proofs, trusted proxies and TLS by default', function () {
  this.timeout(120_000);
  const s = srvSuite();

  let adminFile: string;
  let server: LabProcess | null = null;

  before(async () => {
    adminFile = await writeSecretFile(s.l.dir, 'admin', `${ADMIN}\n`);
  });
  afterEach(async () => {
    await server?.stop();
    server = null;
  });

  const api = (method: string, route: string, headers: string[], body?: unknown) => apiRequest(s.l, method, route, headers, body);
  const bearer = (t: string) => `Authorization: Bearer ${t}`;
  const register = (key: string, extra: string[] = []) =>
    api('POST', '/v1/register', [bearer(TOKEN), ...extra], { client_public_key: key });

  /** The value of one series on the server's /metrics (scraped inside the server namespace). */
  const metric = (re: RegExp) => scrapeMetric(s.l.srv, METRICS, re);
  const devicePeers = () => metric(/^wireguard_peers\{[^}]*\} (\d+)$/m);
  const listening = async (port: number) => (await s.l.srv.runOrThrow('ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== '';

  it('removes a peer whose lease ran out, as `peers remove` does: its forward, its session, its handshakes', async () => {
    server = await startWirecagesrv(s.l, ['--lease', '3s', '--admin-token-file', adminFile, '--metrics-listen', METRICS]);
    const go: WireguardGoPeer = await startWireguardGo(s.l.cli);
    const before = Date.now();
    const r = await register(go.publicKey);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const reg = r.body as unknown as Registration;
    assert.match(reg.lease_expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'RFC 3339, UTC');
    const ends = Date.parse(reg.lease_expires);
    assert.ok(ends >= before + 3000 - 1000 && ends <= Date.now() + 3000 + 1000, `a 3 s lease: ${reg.lease_expires}`);
    // Registering again renews it.
    await new Promise((res) => setTimeout(res, 1100));
    const again = await register(go.publicKey);
    assert.ok(Date.parse(String(again.body.lease_expires)) > ends, 'renewed by registering again');

    await wgClientUp(s.l, go, reg);
    await s.l.cli.run('ping', ['-n', '-c', '1', '-W', '1', GATEWAY4], { timeoutMs: 3000 });
    const fwd = await api('POST', '/v1/portforward', [bearer(ADMIN)], {
      client_public_key: go.publicKey,
      protocol: 'tcp',
      public_port: FORWARD_PORT,
      target_port: 80,
    });
    assert.equal(fwd.status, 201, JSON.stringify(fwd.body));
    assert.ok(await listening(FORWARD_PORT), 'the forward listens');

    await waitFor(() => /removed peer .* 1 forward\(s\)\): its lease ended /.test(server!.output()), {
      what: 'the server to remove the peer at the end of its lease',
      timeoutMs: 15_000,
      intervalMs: 200,
      describe: () => server!.describe(),
    });
    assert.equal(await devicePeers(), 0, 'off the WireGuard device');
    assert.equal(await listening(FORWARD_PORT), false, "the forward's port is closed");
    const list = await api('GET', '/v1/peers', [bearer(ADMIN)]);
    assert.deepEqual(list.body, { peers: [] });
    const forwards = await api('GET', '/v1/portforward', [bearer(ADMIN)]);
    assert.deepEqual(forwards.body, { forwards: [] });

    // Its session is dead on the server, and a new handshake is refused there: the key is unknown.
    const dead = await s.l.cli.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', GATEWAY4], { timeoutMs: 10_000 });
    assert.match(dead.stdout, / 100% packet loss/, dead.stdout);
    await untilHandshakeRefused(s.l, server, go, reg, METRICS, 'the expired key');
    assert.equal(await go.latestHandshake(reg.server_public_key), null, 'no handshake completed');
  });

  it('refuses a key proof replayed after a restart', async () => {
    server = await startWirecagesrv(s.l);
    const keys = await generateKeyPair(s.l.dir, 'proof-client');
    const r = await register(keys.publicKey);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const serverPub = parseKeyBase64(String(r.body.server_public_key));
    const priv = parseKeyBase64((await readFile(keys.privateKeyFile, 'utf8')).trim());
    const route = '/v1/portforward';
    // GET /v1/portforward: a proof over an empty body, with the client's own key.
    const proof = () =>
      keyProofHeader(keyProofKey(priv, serverPub, parseKeyBase64(keys.publicKey), serverPub)!, {
        method: 'GET',
        route,
        clientPublicKey: keys.publicKey,
        time: Math.floor(Date.now() / 1000),
        nonce: randomBytes(16).toString('base64url'),
        body: '',
      });
    const list = (header: string) =>
      api('GET', `${route}?client_public_key=${encodeURIComponent(keys.publicKey)}`, [bearer(TOKEN), `Wirecage-Proof: ${header}`]);

    const once = proof();
    assert.equal((await list(once)).status, 200);
    const replay = await list(once);
    assert.equal(replay.status, 401);

    const exit = await server.stop();
    assert.equal(exit.code, 0, server.describe());
    server = await startWirecagesrv(s.l);
    const afterRestart = await list(once);
    assert.equal(afterRestart.status, 401, JSON.stringify(afterRestart.body));
    assert.match(String(afterRestart.body.error), /already used/);
    assert.equal((await list(proof())).status, 200, 'a fresh proof is accepted');
  });

  it('keys the registration limit on X-Forwarded-For from a --trusted-proxy, and ignores the header from anyone else', async () => {
    // The client namespace plays the reverse proxy.
    const addr = (await s.l.cli.runOrThrow('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'])).stdout.match(
      /inet (\d+\.\d+\.\d+\.\d+)\//,
    )![1]!;
    /** A registration attempt with a wrong token (every attempt counts) on behalf of `client`: its status. */
    const attempt = async (client: string) =>
      (
        await api('POST', '/v1/register', [bearer('not-the-token'), `X-Forwarded-For: 198.51.100.77, ${client}`], {
          client_public_key: randomBytes(32).toString('base64'),
        })
      ).status;

    server = await startWirecagesrv(s.l, ['--register-rate', '2', '--trusted-proxy', `${addr}/32`]);
    assert.deepEqual(
      [await attempt('203.0.113.1'), await attempt('203.0.113.1'), await attempt('203.0.113.1')],
      [401, 401, 429],
      'one client behind the proxy',
    );
    assert.deepEqual(
      [await attempt('203.0.113.2'), await attempt('203.0.113.3')],
      [401, 401],
      'others behind the same proxy have their own buckets',
    );
    await server.stop();

    server = await startWirecagesrv(s.l, ['--register-rate', '2']);
    assert.deepEqual(
      [await attempt('203.0.113.4'), await attempt('203.0.113.5'), await attempt('203.0.113.6')],
      [401, 401, 429],
      'not trusted: the header changes nothing',
    );
  });

  it('refuses plain HTTP on a non-loopback --api-listen without --insecure-http (exit 2), and warns with it', async () => {
    const home = await s.lab.tempDir();
    const r = await s.l.srv.run(
      process.execPath,
      [
        SRV_BIN,
        'up',
        '--auth-token-file',
        s.l.tokenFile,
        '--wg-listen',
        `${s.l.srvAddr}:51823`,
        '--api-listen',
        `${s.l.srvAddr}:8446`,
        '--subnet6',
        SUBNET6,
        '--state',
        join(home, 'registry.db'),
      ],
      { env: { PATH: process.env.PATH, HOME: home }, timeoutMs: 30_000 },
    );
    assert.equal(r.code, 2, r.stderr);
    // The last line (a first start generates the server key before the flags are checked).
    assert.equal(
      r.stderr.trimEnd().split('\n').at(-1),
      `wirecagesrv: --api-listen ${s.l.srvAddr}:8446 is not a loopback address: serve it over HTTPS (--tls-cert FILE --tls-key FILE), ` +
        'or pass --insecure-http to accept that registration tokens travel in clear (e.g. behind a TLS-terminating proxy on a private network)',
    );
    assert.doesNotMatch(r.stderr, /API on/, 'nothing was served');

    server = await startWirecagesrv(s.l); // the lab passes --insecure-http
    assert.match(
      server.output(),
      new RegExp(
        `warn: --insecure-http: the API on http://${s.l.srvAddr.replace(/\./g, '\\.')}:8443 is plain HTTP: registration tokens travel in clear`,
      ),
    );
  });
});
