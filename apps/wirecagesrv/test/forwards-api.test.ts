import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { PROOF_HEADER } from '../src/api/proof.js';
import { freePort, newClient, portTaken, proofFor as clientProof, request, type Client } from './api-client.js';
import { ADMIN, TOKEN, serveForwardsApi, serverPub, type ForwardsApi } from './forwards-api-server.js';
import { tempDirs } from './helpers.js';
import { forEachStore } from './stores.js';

// /v1/portforward over real HTTP (a Unix socket, as api.test.ts), with real
// listeners on 127.0.0.1 (nothing is relayed here: there is no NAT
// namespace; the relay has its own lab test).

/** The Wirecage-Proof header for /v1/portforward. */
function proofFor(c: Client, method: string, body: string, opts: { time?: number; nonce?: string; as?: string } = {}): string {
  return clientProof(c, serverPub, { method, route: '/v1/portforward', body }, opts);
}

const json = { 'content-type': 'application/json' };
/** A client's request: the registration token as Bearer and a proof, unless told otherwise. */
function call(
  api: ForwardsApi,
  method: 'POST' | 'DELETE',
  c: Client,
  fields: Record<string, unknown>,
  o: { token?: string | null; proof?: string | null; key?: string } = {},
) {
  const body = JSON.stringify({ client_public_key: o.key ?? c.key, ...fields });
  const headers: Record<string, string> = { ...json };
  if (o.token !== null) headers.authorization = `Bearer ${o.token ?? TOKEN}`;
  if (o.proof !== null) headers[PROOF_HEADER] = o.proof ?? proofFor(c, method, body, { as: o.key });
  return request(api.sock, method, '/v1/portforward', headers, body);
}

describe('API /v1/portforward', () => {
  const tmp = tempDirs();
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    tmp.cleanup();
  });

  type Api = ForwardsApi;

  async function serve(opts: { path?: string; rateLimit?: { burst: number; perMinute: number }; maxPerPeer?: number } = {}): Promise<Api> {
    const api = await serveForwardsApi(tmp.make(), {
      path: opts.path,
      restore: true,
      forwards: { adminToken: ADMIN, rateLimit: opts.rateLimit, maxPerPeer: opts.maxPerPeer },
    });
    cleanups.push(api.stop);
    return api;
  }

  function list(api: Api, c: Client | null, o: { token?: string; key?: string } = {}) {
    const key = o.key ?? c?.key;
    const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? TOKEN}` };
    if (c) headers[PROOF_HEADER] = proofFor(c, 'GET', '', { as: key });
    return request(api.sock, 'GET', `/v1/portforward${key ? `?client_public_key=${encodeURIComponent(key)}` : ''}`, headers);
  }

  let api: Api;
  let a: Client;
  let b: Client;
  before(async () => {
    api = await serve();
    a = newClient();
    b = newClient();
    await api.registry.register(a.key);
    await api.registry.register(b.key);
  });

  it('creates a TCP forward (201) that is really listening, and answers the same request again with 200', async () => {
    const port = await freePort();
    const r = await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 8080 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(
      { ...r.body, created_at: undefined },
      {
        protocol: 'tcp',
        public_port: port,
        target_port: 8080,
        client_public_key: a.key,
        client_address: '10.200.100.2',
        client_address6: 'fd00:aa::2',
        listen_address: '127.0.0.1',
        public_address: '127.0.0.1',
        active: true,
        created_at: undefined,
      },
    );
    assert.equal(await portTaken(port), true, 'the public port is bound');
    const again = await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 8080 });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, r.body);
  });

  it('creates a UDP forward, with the token in the body as the original API took it', async () => {
    const port = await freePort();
    const r = await call(api, 'POST', a, { token: TOKEN, protocol: 'udp', public_port: port, target_port: 53 }, { token: null });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(await portTaken(port, 'udp'), true);
  });

  it('answers 409 for a port another peer holds, or this peer holds with another target', async () => {
    const port = await freePort();
    assert.equal((await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 22 })).status, 201);
    const other = await call(api, 'POST', b, { protocol: 'tcp', public_port: port, target_port: 22 });
    assert.equal(other.status, 409);
    assert.match(String(other.body.error), /already forwarded to another peer/);
    const retarget = await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 23 });
    assert.equal(retarget.status, 409);
    assert.match(String(retarget.body.error), /already forwarded to this peer's port 22; remove it first/);
    // The same number in the other protocol is another port.
    assert.equal((await call(api, 'POST', b, { protocol: 'udp', public_port: port, target_port: 22 })).status, 201);
  });

  it('answers 503, and records nothing, when the public port is held by another program', async () => {
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => squatter.close(r)));
    const port = (squatter.address() as net.AddressInfo).port;
    const r = await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 80 });
    assert.equal(r.status, 503);
    assert.match(String(r.body.error), new RegExp(`cannot listen on tcp 127\\.0\\.0\\.1 port ${port}: another program holds it`));
    assert.equal(await api.registry.forwards.get('tcp', port), undefined);
  });

  it('answers 400 for bad fields', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ protocol: 'icmp', public_port: 1000, target_port: 1 }, /"protocol" must be "tcp" or "udp"/],
      [{ public_port: 1000, target_port: 1 }, /"protocol"/],
      [
        { protocol: 'tcp', public_port: -1, target_port: 1 },
        /"public_port" must be a whole number from 1 to 65535 \(or 0: any free port the server forwards\)/,
      ],
      // Without --forward-ports there is no range to choose from (forwards-any-port.test.ts has one).
      [{ protocol: 'tcp', public_port: 0, target_port: 1 }, /public_port 0 needs a range of ports to choose from/],
      [{ protocol: 'tcp', public_port: 65536, target_port: 1 }, /"public_port"/],
      [{ protocol: 'tcp', public_port: '8080', target_port: 1 }, /"public_port"/],
      [{ protocol: 'tcp', public_port: 8080, target_port: 1.5 }, /"target_port"/],
      [{ protocol: 'tcp', public_port: 8080 }, /"target_port"/],
    ];
    for (const [fields, re] of cases) {
      const r = await call(api, 'POST', a, fields);
      assert.equal(r.status, 400, JSON.stringify(fields));
      assert.match(String(r.body.error), re);
    }
    const noKey = await request(
      api.sock,
      'POST',
      '/v1/portforward',
      { ...json, authorization: `Bearer ${TOKEN}` },
      JSON.stringify({ protocol: 'tcp', public_port: 1, target_port: 1 }),
    );
    assert.equal(noKey.status, 400);
    assert.match(String(noKey.body.error), /"client_public_key".*is required/);
    const badKey = await call(api, 'POST', a, { protocol: 'tcp', public_port: 1, target_port: 1 }, { key: 'abc' });
    assert.equal(badKey.status, 400);
  });

  it('answers 401 without a valid token, without a proof, with a stale or replayed proof', async () => {
    const port = await freePort();
    const fields = { protocol: 'tcp', public_port: port, target_port: 1 };
    const wrong = await call(api, 'POST', a, fields, { token: 'nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid token');
    const none = await call(api, 'POST', a, fields, { token: null });
    assert.equal(none.status, 401);
    const noProof = await call(api, 'POST', a, fields, { proof: null });
    assert.equal(noProof.status, 401);
    assert.match(String(noProof.body.error), /needs proof of the client key: a wirecage-proof header/);
    const garbled = await call(api, 'POST', a, fields, { proof: 'x.y.z' });
    assert.equal(garbled.status, 401);
    const body = JSON.stringify({ client_public_key: a.key, ...fields });
    const stale = await call(api, 'POST', a, fields, { proof: proofFor(a, 'POST', body, { time: Math.floor(Date.now() / 1000) - 3600 }) });
    assert.equal(stale.status, 401);
    assert.match(String(stale.body.error), /360[01] s behind the server's clock/);
    const once = proofFor(a, 'POST', body);
    const first = await request(
      api.sock,
      'POST',
      '/v1/portforward',
      { ...json, authorization: `Bearer ${TOKEN}`, [PROOF_HEADER]: once },
      body,
    );
    assert.equal(first.status, 201);
    const replay = await request(
      api.sock,
      'POST',
      '/v1/portforward',
      { ...json, authorization: `Bearer ${TOKEN}`, [PROOF_HEADER]: once },
      body,
    );
    assert.equal(replay.status, 401);
    assert.match(String(replay.body.error), /already used/);
    assert.equal((await list(api, null, { token: 'nope', key: a.key })).status, 401);
  });

  it('answers 403 when the proof is not from the owner of client_public_key: one peer cannot act for another', async () => {
    const port = await freePort();
    // B names A's key, proving with its own private key.
    const r = await call(api, 'POST', b, { protocol: 'tcp', public_port: port, target_port: 1 }, { key: a.key });
    assert.equal(r.status, 403);
    assert.match(String(r.body.error), /only that peer \(or the admin token\)/);
    // A proof of a different body (another port) does not carry over.
    const body = JSON.stringify({ client_public_key: a.key, protocol: 'tcp', public_port: port, target_port: 1 });
    const other = await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 2 }, { proof: proofFor(a, 'POST', body) });
    assert.equal(other.status, 403);
    // Nor does a proof made for DELETE.
    const asDelete = await call(
      api,
      'POST',
      a,
      { protocol: 'tcp', public_port: port, target_port: 1 },
      { proof: proofFor(a, 'DELETE', body) },
    );
    assert.equal(asDelete.status, 403);
    assert.equal(await api.registry.forwards.get('tcp', port), undefined);
    // Listing another key's forwards is refused the same way.
    assert.equal((await list(api, b, { key: a.key })).status, 403);
  });

  it('answers 404 for a key that is not registered and for a forward that does not exist', async () => {
    const stranger = newClient();
    const r = await call(api, 'POST', stranger, { protocol: 'tcp', public_port: await freePort(), target_port: 1 });
    assert.equal(r.status, 404);
    assert.match(String(r.body.error), /no peer is registered with the key .*register first/);
    const d = await call(api, 'DELETE', a, { protocol: 'tcp', public_port: await freePort() });
    assert.equal(d.status, 404);
    assert.match(String(d.body.error), /no tcp forward on port/);
    assert.equal((await list(api, stranger)).status, 404);
  });

  it("removes only the caller's own forwards (403 for another peer's); removing frees the port", async () => {
    const port = await freePort();
    assert.equal((await call(api, 'POST', a, { protocol: 'tcp', public_port: port, target_port: 8000 })).status, 201);
    const byB = await call(api, 'DELETE', b, { protocol: 'tcp', public_port: port });
    assert.equal(byB.status, 403);
    assert.match(String(byB.body.error), /forwarded to another peer, not to this key/);
    assert.equal(await portTaken(port), true);
    const byA = await call(api, 'DELETE', a, { protocol: 'tcp', public_port: port });
    assert.equal(byA.status, 200);
    assert.equal(byA.body.public_port, port);
    assert.equal(byA.body.active, false);
    assert.equal(await portTaken(port), false, 'the listener is closed');
    assert.equal(await api.registry.forwards.get('tcp', port), undefined);
  });

  it("lists only the caller's forwards; the admin token lists and removes any, without a proof", async () => {
    const c = newClient();
    const d = newClient();
    await api.registry.register(c.key);
    await api.registry.register(d.key);
    const pc = await freePort();
    const pd = await freePort();
    assert.equal((await call(api, 'POST', c, { protocol: 'tcp', public_port: pc, target_port: 1 })).status, 201);
    assert.equal((await call(api, 'POST', d, { protocol: 'udp', public_port: pd, target_port: 2 })).status, 201);
    const mine = await list(api, c);
    assert.equal(mine.status, 200);
    assert.deepEqual(
      (mine.body.forwards as { public_port: number }[]).map((f) => f.public_port),
      [pc],
    );
    const all = await list(api, null, { token: ADMIN });
    assert.equal(all.status, 200);
    const ports = (all.body.forwards as { client_public_key: string; public_port: number }[]).map(
      (f) => `${f.client_public_key}:${f.public_port}`,
    );
    assert.ok(ports.includes(`${c.key}:${pc}`) && ports.includes(`${d.key}:${pd}`));
    const onlyD = await list(api, null, { token: ADMIN, key: d.key });
    assert.deepEqual(
      (onlyD.body.forwards as { public_port: number }[]).map((f) => f.public_port),
      [pd],
    );
    // The admin creates for a peer and removes another's forward, without proofs.
    const pa = await freePort();
    const made = await call(api, 'POST', d, { protocol: 'tcp', public_port: pa, target_port: 3 }, { token: ADMIN, proof: null });
    assert.equal(made.status, 201);
    assert.equal(made.body.client_public_key, d.key);
    const gone = await request(
      api.sock,
      'DELETE',
      '/v1/portforward',
      { ...json, authorization: `Bearer ${ADMIN}` },
      JSON.stringify({ protocol: 'tcp', public_port: pc }),
    );
    assert.equal(gone.status, 200);
    assert.equal(gone.body.client_public_key, c.key);
    assert.equal(await portTaken(pc), false);
  });

  it('answers 413 and 415 like /v1/register, and 405 for another method', async () => {
    const big = JSON.stringify({ client_public_key: a.key, pad: 'x'.repeat(17 * 1024) });
    assert.equal((await request(api.sock, 'POST', '/v1/portforward', { ...json, authorization: `Bearer ${TOKEN}` }, big)).status, 413);
    const plain = await request(
      api.sock,
      'POST',
      '/v1/portforward',
      { 'content-type': 'text/plain', authorization: `Bearer ${TOKEN}` },
      '{}',
    );
    assert.equal(plain.status, 415);
    const put = await request(api.sock, 'PUT', '/v1/portforward', {});
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, POST, DELETE');
  });

  it('answers 409 beyond the forwards allowed per peer, and 429 beyond the request rate', async () => {
    const small = await serve({ maxPerPeer: 1, rateLimit: { burst: 4, perMinute: 1 } });
    const c = newClient();
    await small.registry.register(c.key);
    assert.equal((await call(small, 'POST', c, { protocol: 'tcp', public_port: await freePort(), target_port: 1 })).status, 201);
    const more = await call(small, 'POST', c, { protocol: 'tcp', public_port: await freePort(), target_port: 1 });
    assert.equal(more.status, 409);
    assert.match(String(more.body.error), /already has 1 forwards, the most allowed/);
    assert.equal((await call(small, 'POST', c, { protocol: 'tcp', public_port: 1, target_port: 1 }, { token: 'guess' })).status, 401);
    assert.equal((await call(small, 'POST', c, { protocol: 'tcp', public_port: 1, target_port: 1 }, { token: 'guess' })).status, 401);
    const limited = await call(small, 'POST', c, { protocol: 'tcp', public_port: 1, target_port: 1 }, { token: 'guess' });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers['retry-after']) > 0);
  });

  it('keeps forwards across a restart and listens on them again; one whose port was taken meanwhile shows inactive until created again', async () => {
    const path = join(tmp.make(), 'restart.db');
    const first = await serve({ path });
    const c = newClient();
    await first.registry.register(c.key);
    const kept = await freePort();
    const lost = await freePort();
    assert.equal((await call(first, 'POST', c, { protocol: 'tcp', public_port: kept, target_port: 80 })).status, 201);
    assert.equal((await call(first, 'POST', c, { protocol: 'udp', public_port: lost, target_port: 53 })).status, 201);
    await first.stop();
    assert.equal(await portTaken(kept), false, 'stopping closes the listeners');

    const { createSocket } = await import('node:dgram');
    const squatter = createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(lost, '127.0.0.1', r));
    const second = await serve({ path });
    assert.equal(await portTaken(kept), true, 'listening again after the restart');
    const l = await list(second, c);
    assert.deepEqual(
      (l.body.forwards as { protocol: string; public_port: number; target_port: number; active: boolean }[]).map((f) => [
        f.protocol,
        f.public_port,
        f.target_port,
        f.active,
      ]),
      [
        ['tcp', kept, 80, true],
        ['udp', lost, 53, false],
      ],
    );
    const busy = await call(second, 'POST', c, { protocol: 'udp', public_port: lost, target_port: 53 });
    assert.equal(busy.status, 503);
    await new Promise<void>((r) => squatter.close(r));
    const back = await call(second, 'POST', c, { protocol: 'udp', public_port: lost, target_port: 53 });
    assert.equal(back.status, 200);
    assert.equal(back.body.active, true);
  });

  it("removes a peer's forwards with the peer", async () => {
    const c = newClient();
    await api.registry.register(c.key);
    await api.registry.forwards.add({ protocol: 'tcp', publicPort: 1, targetPort: 1, peerPublicKey: c.key });
    assert.equal((await api.registry.forwards.list(c.key)).length, 1);
    await api.registry.remove(c.key);
    assert.deepEqual(await api.registry.forwards.list(c.key), []);
    assert.equal(await api.registry.forwards.get('tcp', 1), undefined);
  });
});

// The limit's arbiter is the store's add: requests that all passed the early count still get 409.
forEachStore('API /v1/portforward: the forwards allowed per peer', (store) => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('answers 409 beyond them when the requests come at once, and closes the refused ports again', async () => {
    const api = await serveForwardsApi(tmp.make(), { registry: await store.fresh(), forwards: { adminToken: ADMIN, maxPerPeer: 3 } });
    try {
      const c = newClient();
      await api.registry.register(c.key);
      const ports = await Promise.all(Array.from({ length: 10 }, () => freePort()));
      const answers = await Promise.all(ports.map((p) => call(api, 'POST', c, { protocol: 'tcp', public_port: p, target_port: 1 })));
      assert.deepEqual(answers.map((a) => a.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409, 409, 409]);
      for (const a of answers) if (a.status === 409) assert.match(String(a.body.error), /already has 3 forwards, the most allowed/);
      assert.equal(await api.registry.forwards.count(c.key), 3);
      const refused = ports.filter((_, i) => answers[i]!.status === 409);
      for (const p of refused) assert.equal(api.manager.isOpen('tcp', p), false, `port ${p} left open`);
    } finally {
      await api.stop();
    }
  });
});
