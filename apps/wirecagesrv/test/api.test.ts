import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { labLeaf, type LabCert } from '@wirecage/netns/lab';
import { createApiHandler, type ApiOptions } from '../src/api/routes.js';
import { listenApi, type ApiServer } from '../src/api/listen.js';
import { SqliteRegistry, type Registry, type PeerRecord } from '../src/registry/index.js';
import { PROXIED_CLIENT } from './api-client.js';
import { newPublicKey, tempDirs } from './helpers.js';

// The API is served on a Unix socket: real HTTP parsing and framing, without
// sending anything through the machine's own network stack.

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

interface Req {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
}

function request(socketPath: string, r: Req, tls?: { ca: Buffer; servername: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // A reverse proxy on the Unix socket names the client (required there).
    const headers: Record<string, string> = { ...PROXIED_CLIENT, ...r.headers };
    if (r.body !== undefined && !r.chunked) headers['content-length'] = String(Buffer.byteLength(r.body));
    const opts = { socketPath, method: r.method ?? 'GET', path: r.path ?? '/', headers };
    const onRes = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Answer['body']) });
      });
    };
    const req = tls
      ? https.request({ ...opts, ca: tls.ca, servername: tls.servername, agent: false }, onRes)
      : http.request({ ...opts, agent: false }, onRes);
    req.on('error', reject);
    if (r.body !== undefined) req.write(r.body);
    req.end();
  });
}

const TOKEN = 'correct-horse-battery-staple';
const SERVER_KEY = newPublicKey();

describe('API', () => {
  const tmp = tempDirs();
  const servers: ApiServer[] = [];
  const registries: Registry[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    for (const r of registries) await r.close();
    tmp.cleanup();
  });

  async function serve(
    over: Partial<ApiOptions> & { subnet?: string } = {},
  ): Promise<{ sock: string; registry: Registry; seen: PeerRecord[] }> {
    const dir = tmp.make();
    const registry = await SqliteRegistry.open({
      location: join(dir, 'r.db'),
      subnet: over.subnet ?? '10.200.100.0/24',
      subnet6: 'fd00:aa::/64',
    });
    registries.push(registry);
    const seen: PeerRecord[] = [];
    const handler = createApiHandler({
      registry,
      authToken: TOKEN,
      serverPublicKey: SERVER_KEY,
      serverEndpoint: 'vpn.example.test:51820',
      mtu: 1420,
      dns: ['10.200.100.1'],
      onRegistered: (p) => seen.push(p),
      // All requests on a Unix socket share one source; the limit has its own test.
      rateLimit: { burst: 1000 },
      ...over,
    });
    const sock = join(dir, 'api.sock');
    servers.push(await listenApi(handler, { path: sock }));
    return { sock, registry, seen };
  }

  const json = { 'content-type': 'application/json' };
  const register = (sock: string, body: unknown, headers: Record<string, string> = {}) =>
    request(sock, { method: 'POST', path: '/v1/register', headers: { ...json, ...headers }, body: JSON.stringify(body) });

  let api: { sock: string; registry: Registry; seen: PeerRecord[] };
  before(async () => {
    api = await serve();
  });

  it('answers /healthz', async () => {
    const r = await request(api.sock, { path: '/healthz' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal((await request(api.sock, { method: 'HEAD', path: '/healthz' })).status, 200);
  });

  it('registers a key with the token in the body (the original API)', async () => {
    const key = newPublicKey();
    const r = await register(api.sock, { token: TOKEN, client_public_key: key });
    assert.equal(r.status, 200);
    // The lease: RFC 3339 in UTC, as the registry holds it (30 days by default).
    assert.equal(r.body.lease_expires, (await api.registry.get(key))!.leaseExpires.toISOString());
    assert.match(String(r.body.lease_expires), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(String(r.body.lease_expires)) - Date.now() - 30 * 86_400_000) < 60_000);
    assert.deepEqual(
      { ...r.body, lease_expires: undefined },
      {
        lease_expires: undefined,
        client_address: '10.200.100.2/24',
        client_address6: 'fd00:aa::2/64',
        server_public_key: SERVER_KEY,
        server_endpoint: 'vpn.example.test:51820',
        server_endpoints: ['vpn.example.test:51820'],
        dns: ['10.200.100.1'],
        mtu: 1420,
        allowed_ips: ['0.0.0.0/0', '::/0'],
        persistent_keepalive: 25,
      },
    );
    assert.equal(api.seen.at(-1)!.publicKey, key, 'the peer was handed to the device');
    assert.equal((await api.registry.get(key))!.address4, '10.200.100.2');
  });

  it('registers with an Authorization: Bearer token, which wins over the body', async () => {
    const key = newPublicKey();
    const r = await register(api.sock, { client_public_key: key }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200);
    const again = await register(api.sock, { token: 'wrong', client_public_key: key }, { authorization: `bearer ${TOKEN}` });
    assert.equal(again.status, 200);
    assert.equal(again.body.client_address, r.body.client_address, 'the same key gets the same address');
  });

  it('answers 401 for a missing, wrong or malformed token', async () => {
    const key = newPublicKey();
    const cases = [
      await register(api.sock, { client_public_key: key }),
      await register(api.sock, { token: TOKEN + 'x', client_public_key: key }),
      await register(api.sock, { token: '', client_public_key: key }),
      await register(api.sock, { token: TOKEN, client_public_key: key }, { authorization: 'Bearer nope' }),
      await register(api.sock, { token: TOKEN, client_public_key: key }, { authorization: `Basic ${TOKEN}` }),
    ];
    for (const r of cases) {
      assert.equal(r.status, 401, JSON.stringify(r.body));
      assert.equal(typeof r.body.error, 'string');
      assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    }
    assert.equal(await api.registry.get(key), undefined, 'nothing was registered');
  });

  it('answers 400 for bad JSON and bad fields', async () => {
    const post = (body: string) => request(api.sock, { method: 'POST', path: '/v1/register', headers: json, body });
    const cases: [Promise<Answer>, RegExp][] = [
      [post('{"token":'), /not valid JSON/],
      [post('[1,2]'), /must be a JSON object/],
      [post('null'), /must be a JSON object/],
      [register(api.sock, { token: TOKEN }), /"client_public_key".*is required/],
      [register(api.sock, { token: TOKEN, client_public_key: 42 }), /"client_public_key".*is required/],
      [register(api.sock, { token: TOKEN, client_public_key: 'abc' }), /not a WireGuard key/],
      [register(api.sock, { token: 7, client_public_key: newPublicKey() }), /"token" must be a string/],
      [register(api.sock, { token: TOKEN, client_public_key: SERVER_KEY }), /server's own public key/],
    ];
    for (const [p, re] of cases) {
      const r = await p;
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(String(r.body.error), re);
    }
  });

  it('answers 404 for an unknown route and 405 for a wrong method', async () => {
    const nf = await request(api.sock, { path: '/v2/nothing' });
    assert.equal(nf.status, 404);
    assert.match(String(nf.body.error), /no such endpoint: \/v2\/nothing/);
    const na = await request(api.sock, { method: 'GET', path: '/v1/register' });
    assert.equal(na.status, 405);
    assert.equal(na.headers.allow, 'POST');
    assert.equal(typeof na.body.error, 'string');
    const nd = await request(api.sock, { method: 'DELETE', path: '/healthz' });
    assert.equal(nd.status, 405);
    assert.equal(nd.headers.allow, 'GET, HEAD');
  });

  it('answers 415 unless the body is application/json', async () => {
    const body = JSON.stringify({ token: TOKEN, client_public_key: newPublicKey() });
    const variants: Record<string, string>[] = [{ 'content-type': 'text/plain' }, {}, { 'content-type': 'application/jsonx' }];
    for (const headers of variants) {
      const r = await request(api.sock, { method: 'POST', path: '/v1/register', headers, body });
      assert.equal(r.status, 415);
      assert.match(String(r.body.error), /application\/json/);
    }
    const withCharset = await request(api.sock, {
      method: 'POST',
      path: '/v1/register',
      headers: { 'content-type': 'Application/JSON; charset=utf-8' },
      body,
    });
    assert.equal(withCharset.status, 200);
  });

  it('answers 413 for a body over the limit, declared or streamed', async () => {
    const big = JSON.stringify({ token: TOKEN, client_public_key: newPublicKey(), pad: 'x'.repeat(17 * 1024) });
    const declared = await request(api.sock, { method: 'POST', path: '/v1/register', headers: json, body: big });
    assert.equal(declared.status, 413);
    assert.match(String(declared.body.error), /larger than 16384 bytes/);
    const streamed = await request(api.sock, { method: 'POST', path: '/v1/register', headers: json, body: big, chunked: true });
    assert.equal(streamed.status, 413);
    const fits = JSON.stringify({ token: TOKEN, client_public_key: newPublicKey(), pad: 'x'.repeat(15 * 1024) });
    assert.equal((await request(api.sock, { method: 'POST', path: '/v1/register', headers: json, body: fits, chunked: true })).status, 200);
  });

  it('answers 503 when no address is free', async () => {
    const small = await serve({ subnet: '10.1.1.0/30' });
    assert.equal((await register(small.sock, { token: TOKEN, client_public_key: newPublicKey() })).status, 200);
    const full = await register(small.sock, { token: TOKEN, client_public_key: newPublicKey() });
    assert.equal(full.status, 503);
    assert.match(String(full.body.error), /no address is free.*10\.1\.1\.0\/30/);
  });

  it('answers 429 with Retry-After once a source has used its attempts, bad tokens included', async () => {
    const limited = await serve({ rateLimit: { burst: 3, perMinute: 1 } });
    assert.equal((await register(limited.sock, { token: 'bad', client_public_key: newPublicKey() })).status, 401);
    assert.equal((await register(limited.sock, { token: 'bad', client_public_key: newPublicKey() })).status, 401);
    assert.equal((await register(limited.sock, { token: TOKEN, client_public_key: newPublicKey() })).status, 200);
    const r = await register(limited.sock, { token: TOKEN, client_public_key: newPublicKey() });
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '60');
    assert.match(String(r.body.error), /too many registration attempts/);
  });

  it('answers 500 with a generic message when adding the peer fails', async () => {
    const broken = await serve({
      onRegistered: () => {
        throw new Error('device exploded');
      },
    });
    const r = await register(broken.sock, { token: TOKEN, client_public_key: newPublicKey() });
    assert.equal(r.status, 500);
    assert.doesNotMatch(String(r.body.error), /exploded/);
  });

  describe('over HTTPS', () => {
    let dir: string;
    let cert: LabCert;
    before(() => {
      dir = tmp.make();
      cert = labLeaf(dir, 'wirecagesrv.test', 'DNS:wirecagesrv.test');
    });

    it('serves the same API with the given certificate', async () => {
      const registry = await SqliteRegistry.open({ location: join(dir, 'r.db') });
      registries.push(registry);
      const handler = createApiHandler({
        registry,
        authToken: TOKEN,
        serverPublicKey: SERVER_KEY,
        serverEndpoint: 'e:1',
        mtu: 1420,
        dns: [],
      });
      const sock = join(dir, 'tls.sock');
      const s = await listenApi(handler, { path: sock }, { certFile: cert.cert, keyFile: cert.key });
      servers.push(s);
      assert.equal(s.tls, true);
      const tls = { ca: Buffer.from(cert.pem), servername: 'wirecagesrv.test' };
      const r = await request(
        sock,
        {
          method: 'POST',
          path: '/v1/register',
          headers: { ...json, authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ client_public_key: newPublicKey() }),
        },
        tls,
      );
      assert.equal(r.status, 200);
      assert.match(String(r.body.client_address), /^10\.200\.100\.2\/24$/);
      // The certificate is really checked: another name is refused.
      await assert.rejects(request(sock, { path: '/healthz' }, { ...tls, servername: 'other.test' }), /altnames|Hostname/);
    });

    it('names an unreadable or unusable certificate', async () => {
      const handler = () => {};
      await assert.rejects(
        listenApi(handler, { path: join(dir, 'x.sock') }, { certFile: join(dir, 'missing.pem'), keyFile: cert.key }),
        /cannot read the TLS certificate \(--tls-cert\) .*missing\.pem/,
      );
      await assert.rejects(listenApi(handler, { path: join(dir, 'y.sock') }, { certFile: cert.key, keyFile: cert.cert }), /cannot be used/);
    });
  });
});
