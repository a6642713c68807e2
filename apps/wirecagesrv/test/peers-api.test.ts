import assert from 'node:assert/strict';
import { Device, parseCidr, parseKeyBase64 } from '@wirecage/wg-engine';
import { PROOF_HEADER } from '../src/api/proof.js';
import { freePort, newClient, portTaken, proofFor as clientProof, request, type Answer, type Client } from './api-client.js';
import { ADMIN, TOKEN, serveForwardsApi, serverPriv, serverPub, type ForwardsApi } from './forwards-api-server.js';
import { tempDirs } from './helpers.js';

// DELETE /v1/register and GET /v1/peers over real HTTP (a Unix socket, as
// api.test.ts), with a real registry file, real forward listeners on
// 127.0.0.1 and a real (unbound) WireGuard device wired as server.ts wires it.

/** The Wirecage-Proof header for `route`, naming `as` (default the client's own key). */
function proofFor(c: Client, method: string, route: string, body: string, as = c.key): string {
  return clientProof(c, serverPub, { method, route, body }, { as });
}

/** Binds 127.0.0.1:port and lets it go: true when that worked (nothing holds the port). */
async function canBind(port: number): Promise<boolean> {
  return !(await portTaken(port));
}

describe('API /v1/register DELETE and /v1/peers', () => {
  const tmp = tempDirs();
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    tmp.cleanup();
  });

  interface Api extends ForwardsApi {
    device: Device;
  }

  async function serve(opts: { adminToken?: string | null } = {}): Promise<Api> {
    const device = new Device({ mtu: 1420, maxPeers: 16 });
    device.setPrivateKey(serverPriv);
    const api = await serveForwardsApi(tmp.make(), {
      api: {
        onRegistered: (p) =>
          device.setPeer(parseKeyBase64(p.publicKey), { allowedIps: [parseCidr(`${p.address4}/32`)], replaceAllowedIps: true }),
        onRemoved: (p) => {
          device.removePeer(parseKeyBase64(p.publicKey));
        },
      },
      forwards: { adminToken: opts.adminToken === null ? undefined : (opts.adminToken ?? ADMIN) },
    });
    cleanups.push(api.stop);
    return { ...api, device };
  }

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  async function register(api: Api, c: Client): Promise<Answer> {
    const r = await request(api.sock, 'POST', '/v1/register', bearer(TOKEN), JSON.stringify({ client_public_key: c.key }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r;
  }

  /** A client's own DELETE /v1/register: the registration token and a proof, unless told otherwise. */
  function deregister(api: Api, c: Client, o: { token?: string | null; proof?: string | null; key?: string } = {}): Promise<Answer> {
    const body = JSON.stringify({ client_public_key: o.key ?? c.key });
    const headers: Record<string, string> = o.token === null ? {} : bearer(o.token ?? TOKEN);
    if (o.proof !== null) headers[PROOF_HEADER] = o.proof ?? proofFor(c, 'DELETE', '/v1/register', body, o.key);
    return request(api.sock, 'DELETE', '/v1/register', headers, body);
  }

  async function forward(api: Api, c: Client, protocol: 'tcp' | 'udp', port: number): Promise<void> {
    const body = JSON.stringify({ client_public_key: c.key, protocol, public_port: port, target_port: 8080 });
    const r = await request(
      api.sock,
      'POST',
      '/v1/portforward',
      { ...bearer(TOKEN), [PROOF_HEADER]: proofFor(c, 'POST', '/v1/portforward', body) },
      body,
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }

  const listPeers = (api: Api, headers: Record<string, string> = bearer(ADMIN)) => request(api.sock, 'GET', '/v1/peers', headers);

  let api: Api;
  before(async () => {
    api = await serve();
  });

  it('a client removes itself with the token and a proof: registry, device and forwards are cleared, the ports are free again', async () => {
    const a = newClient();
    await register(api, a);
    const tcpPort = await freePort();
    const udpPort = await freePort();
    await forward(api, a, 'tcp', tcpPort);
    await forward(api, a, 'udp', udpPort);
    assert.equal(await canBind(tcpPort), false, 'the forward listens before the removal');
    assert.ok(api.device.getPeer(parseKeyBase64(a.key)));

    const r = await deregister(api, a);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { removed: a.key });
    assert.equal(await api.registry.get(a.key), undefined);
    assert.deepEqual(await api.registry.forwards.list(a.key), []);
    assert.equal(api.device.getPeer(parseKeyBase64(a.key)), undefined, 'the peer is off the device');
    assert.equal(api.manager.isOpen('tcp', tcpPort), false);
    assert.equal(api.manager.isOpen('udp', udpPort), false);
    assert.equal(await canBind(tcpPort), true, 'the TCP listener is closed');
    const { createSocket } = await import('node:dgram');
    const u = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      u.once('error', reject);
      u.bind(udpPort, '127.0.0.1', resolve);
    });
    await new Promise<void>((r) => u.close(r));
  });

  it('answers 401 without a proof or with a wrong token, and the peer stays', async () => {
    const a = newClient();
    await register(api, a);
    const noProof = await deregister(api, a, { proof: null });
    assert.equal(noProof.status, 401);
    assert.match(String(noProof.body.error), /needs proof of the client key/);
    const wrong = await deregister(api, a, { token: 'not-the-token' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid token');
    assert.equal((await deregister(api, a, { token: null })).status, 401);
    assert.ok(await api.registry.get(a.key));
    assert.ok(api.device.getPeer(parseKeyBase64(a.key)));
  });

  it("answers 403 when one peer names another's key, or reuses a proof made for another route; the peer stays", async () => {
    const a = newClient();
    const b = newClient();
    await register(api, a);
    await register(api, b);
    const r = await deregister(api, b, { key: a.key });
    assert.equal(r.status, 403);
    assert.match(String(r.body.error), /does not come from the owner of client_public_key/);
    const body = JSON.stringify({ client_public_key: a.key });
    const otherRoute = await deregister(api, a, { proof: proofFor(a, 'DELETE', '/v1/portforward', body) });
    assert.equal(otherRoute.status, 403);
    assert.ok(await api.registry.get(a.key));
  });

  it('the admin token removes any peer without a proof (as Bearer, or "token" in the body)', async () => {
    const a = newClient();
    const b = newClient();
    await register(api, a);
    await register(api, b);
    const r = await deregister(api, a, { token: ADMIN, proof: null });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { removed: a.key });
    const inBody = await request(api.sock, 'DELETE', '/v1/register', {}, JSON.stringify({ client_public_key: b.key, token: ADMIN }));
    assert.equal(inBody.status, 200);
    assert.equal(await api.registry.get(a.key), undefined);
    assert.equal(await api.registry.get(b.key), undefined);
    assert.equal(api.device.getPeer(parseKeyBase64(b.key)), undefined);
  });

  it('answers 404 for a key that is not registered, 400 for a missing or malformed key', async () => {
    const stranger = newClient();
    const own = await deregister(api, stranger);
    assert.equal(own.status, 404);
    assert.match(String(own.body.error), /no peer is registered with the key/);
    assert.equal((await deregister(api, stranger, { token: ADMIN, proof: null })).status, 404);
    const noKey = await request(api.sock, 'DELETE', '/v1/register', bearer(ADMIN), '{}');
    assert.equal(noKey.status, 400);
    assert.match(String(noKey.body.error), /"client_public_key".*is required/);
    const bad = await request(api.sock, 'DELETE', '/v1/register', bearer(ADMIN), JSON.stringify({ client_public_key: 'abc' }));
    assert.equal(bad.status, 400);
  });

  it('a removed key registers again and gets an address (the freed one is reused)', async () => {
    const fresh = await serve();
    const a = newClient();
    const b = newClient();
    const first = await register(fresh, a);
    assert.equal(first.body.client_address, '10.200.100.2/24');
    assert.equal((await deregister(fresh, a)).status, 200);
    const other = await register(fresh, b);
    assert.equal(other.body.client_address, '10.200.100.2/24', 'the freed address goes to the next key');
    const again = await register(fresh, a);
    assert.equal(again.body.client_address, '10.200.100.3/24');
    assert.ok(fresh.device.getPeer(parseKeyBase64(a.key)), 'back on the device');
    assert.equal(fresh.device.peerCount, 2);
  });

  it('lists every peer with its addresses, forwards and last handshake, for the admin token only', async () => {
    const fresh = await serve();
    const a = newClient();
    const b = newClient();
    await register(fresh, a);
    await register(fresh, b);
    await forward(fresh, b, 'tcp', await freePort());
    await fresh.registry.touch(b.key, Date.parse('2030-01-02T03:04:05Z'), '192.0.2.7:51820');
    const r = await listPeers(fresh);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const peers = r.body.peers as Record<string, unknown>[];
    assert.equal(peers.length, 2);
    assert.deepEqual(
      peers.map((p) => p.lease_expires),
      await Promise.all([a.key, b.key].map(async (k) => (await fresh.registry.get(k))!.leaseExpires.toISOString())),
      "each lease's end",
    );
    assert.deepEqual(
      { ...peers[0], created_at: undefined, lease_expires: undefined },
      {
        client_public_key: a.key,
        client_address: '10.200.100.2',
        client_address6: 'fd00:aa::2',
        forwards: 0,
        created_at: undefined,
        lease_expires: undefined,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(String(peers[0]!.created_at))));
    assert.deepEqual(
      { ...peers[1], created_at: undefined, lease_expires: undefined },
      {
        lease_expires: undefined,
        client_public_key: b.key,
        client_address: '10.200.100.3',
        client_address6: 'fd00:aa::3',
        last_seen: '2030-01-02T03:04:05.000Z',
        last_endpoint: '192.0.2.7:51820',
        forwards: 1,
        created_at: undefined,
      },
    );

    const asClient = await listPeers(fresh, bearer(TOKEN));
    assert.equal(asClient.status, 401);
    assert.match(String(asClient.body.error), /needs the admin token/);
    assert.equal((await listPeers(fresh, {})).status, 401);
    assert.equal((await listPeers(fresh, bearer('guess-guess-guess-guess'))).status, 401);

    assert.equal((await deregister(fresh, b, { token: ADMIN, proof: null })).status, 200);
    const after = await listPeers(fresh);
    assert.deepEqual(
      (after.body.peers as { client_public_key: string }[]).map((p) => p.client_public_key),
      [a.key],
    );
  });

  it('does not serve /v1/peers without an admin token (404), while clients still remove themselves', async () => {
    const noAdmin = await serve({ adminToken: null });
    const r = await listPeers(noAdmin);
    assert.equal(r.status, 404);
    assert.match(String(r.body.error), /no such endpoint: \/v1\/peers/);
    const a = newClient();
    await register(noAdmin, a);
    assert.equal(
      (await deregister(noAdmin, a, { token: ADMIN, proof: null })).status,
      401,
      'an admin token the server does not have is just wrong',
    );
    assert.equal((await deregister(noAdmin, a)).status, 200);
  });
});
