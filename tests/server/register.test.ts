// wirecagesrv end to end in a lab (tests/lib/srv-lab.ts; its internet and LAN
// are not used here): the server runs in its own namespace, a wireguard-go
// client in another registers with curl, configures itself from the answer
// with `wg set`, and completes a handshake. Then the server is restarted on
// the same state file: the peer must still be known (same addresses, and a
// fresh handshake succeeds without registering again). Pings to the server's
// gateway address trigger the handshakes and prove traffic through the server
// both ways; traffic through the NAT to other hosts is nat.test.ts's, DNS
// dns.test.ts's.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabProcess } from '../lib/process.js';
import { GATEWAY4, GATEWAY6, SRV_TOKEN as TOKEN, startWirecagesrv, type Registration } from '../lib/srv-lab.js';
import { apiRequest } from '../lib/srv-client.js';
import { srvSuite } from '../lib/srv-suite.js';
import { waitFor } from '../lib/wait.js';
import { generateKeyPair } from '../lib/wg.js';
import { startWireguardGo, type WireguardGoPeer } from '../lib/wireguard-go.js';

describe('wirecagesrv in a lab', function () {
  this.timeout(60_000);
  const s = srvSuite();

  let srvAddr: string;
  let dir: string;
  let keyFile: string;
  let serverPublicKey: string;
  let server: LabProcess;
  let go: WireguardGoPeer;
  let first: Registration;

  before(async () => {
    ({ srvAddr, dir } = s.l);
    const keys = await generateKeyPair(dir, 'server');
    keyFile = keys.privateKeyFile;
    serverPublicKey = keys.publicKey;
  });

  /** Starts `wirecagesrv up` and waits for its API; by default with the key file and state of the suite. */
  const startServer = (opts: { keyArgs?: string[]; env?: NodeJS.ProcessEnv; state?: string } = {}): Promise<LabProcess> =>
    startWirecagesrv(s.l, { args: opts.keyArgs ?? ['--private-key-file', keyFile], env: opts.env, state: opts.state });

  const register = (publicKey: string, token = TOKEN) =>
    apiRequest(s.l, 'POST', '/v1/register', [`Authorization: Bearer ${token}`], { client_public_key: publicKey });

  /** Waits for the first handshake of a freshly configured peer (`wg` reports whole seconds, so none is compared). */
  async function handshakeCompletes(): Promise<Date> {
    return waitFor(
      async () => {
        server.assertRunning();
        // Any packet into the tunnel makes wireguard-go initiate; whether it is answered does not matter here.
        await s.l.cli.run('ping', ['-n', '-c', '1', '-W', '1', GATEWAY4], { timeoutMs: 3000 });
        const t = await go.latestHandshake(serverPublicKey);
        return t;
      },
      {
        what: 'a completed handshake between wireguard-go and wirecagesrv',
        timeoutMs: 15_000,
        intervalMs: 200,
        describe: async () => `${await go.show()}\n${server.describe()}`,
      },
    );
  }

  it('registers a wireguard-go client over the API; the handshake completes and traffic passes both ways', async () => {
    server = await startServer();
    go = await startWireguardGo(s.l.cli);
    const r = await register(go.publicKey);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    first = r.body as unknown as Registration;
    assert.equal(first.client_address, '10.200.100.2/24');
    assert.equal(first.client_address6, 'fd7a:5e:60::2/64', 'the first address of SUBNET6 (fd7a:5e:60::/64)');
    assert.equal(first.server_public_key, serverPublicKey);
    assert.equal(first.server_endpoint, `${srvAddr}:51820`);
    assert.equal(first.persistent_keepalive, 25);
    // The gateway addresses, where the NAT's DNS forwarder answers.
    assert.deepEqual(first.dns, [GATEWAY4, GATEWAY6]);

    await s.l.cli.addAddress(go.ifname, first.client_address);
    await s.l.cli.addAddress(go.ifname, first.client_address6);
    await s.l.cli.linkUp(go.ifname, first.mtu);
    await go.setPeer({
      publicKey: first.server_public_key,
      endpoint: first.server_endpoint,
      allowedIps: first.allowed_ips,
      persistentKeepalive: first.persistent_keepalive,
    });
    await handshakeCompletes();
    assert.match(await go.show(), /latest handshake: /);
    // Traffic passes through wirecagesrv both ways: the NAT namespace's gateway answers over IPv4 and IPv6.
    const ping4 = await s.l.cli.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', GATEWAY4], { timeoutMs: 10_000 });
    assert.match(ping4.stdout, / 0% packet loss/, ping4.stdout);
    const ping6 = await s.l.cli.run('ping', ['-6', '-n', '-c', '3', '-i', '0.2', '-W', '2', GATEWAY6], { timeoutMs: 10_000 });
    assert.match(ping6.stdout, / 0% packet loss/, ping6.stdout);
  });

  it('refuses a wrong token over the wire with 401', async () => {
    const r = await register((await generateKeyPair(dir, 'other')).publicKey, 'not-the-token');
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid token');
  });

  it('keeps the peer across a restart: same addresses, and a new handshake without registering again', async () => {
    const exit = await server.stop();
    assert.equal(exit.code, 0, `wirecagesrv should exit cleanly on SIGTERM: ${server.describe()}`);
    server = await startServer();
    // Forget the old session on the client so it must handshake with the restarted server,
    // which can only answer if it loaded the peer from its registry. A re-added peer starts with no
    // handshake at all, so any handshake reported afterwards is a new one.
    await go.removePeer(serverPublicKey);
    await go.setPeer({
      publicKey: first.server_public_key,
      endpoint: first.server_endpoint,
      allowedIps: first.allowed_ips,
      persistentKeepalive: first.persistent_keepalive,
    });
    await handshakeCompletes();

    const again = await register(go.publicKey);
    assert.equal(again.status, 200);
    assert.equal(again.body.client_address, first.client_address);
    assert.equal(again.body.client_address6, first.client_address6);
    const other = await register((await generateKeyPair(dir, 'third')).publicKey);
    assert.equal(other.body.client_address, '10.200.100.3/24', 'a new key gets the next free address');
  });

  it('takes the key from WG_PRIVATE_KEY_B64, or generates one next to the state file, and never prints it', async () => {
    await server.stop();
    const envKey = await generateKeyPair(dir, 'env');
    const keyText = (await readFile(envKey.privateKeyFile, 'utf8')).trim();
    server = await startServer({ keyArgs: [], env: { WG_PRIVATE_KEY_B64: keyText }, state: join(dir, 'env', 'registry.db') });
    assert.equal((await register(go.publicKey)).body.server_public_key, envKey.publicKey);
    await server.stop();
    assert.ok(!server.output().includes(keyText), 'the private key is not in the output');

    const genState = join(dir, 'gen', 'registry.db');
    server = await startServer({ keyArgs: [], state: genState });
    const generated = join(dir, 'gen', 'server.key');
    assert.equal((await stat(generated)).mode & 0o777, 0o600);
    const genText = (await readFile(generated, 'utf8')).trim();
    const pub = (await s.l.cli.runOrThrow('wg', ['pubkey'], { input: `${genText}\n` })).stdout.trim();
    assert.equal((await register(go.publicKey)).body.server_public_key, pub);
    assert.ok(!server.output().includes(genText));
  });
});
