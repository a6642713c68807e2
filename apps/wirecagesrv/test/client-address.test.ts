import assert from 'node:assert/strict';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { forwardedFor, hopAddress, resolveClientAddress, TrustedProxies, xForwardedFor } from '../src/api/client-address.js';
import { HttpError } from '../src/api/errors.js';
import { listenApi, type ApiServer } from '../src/api/listen.js';
import { createApiHandler } from '../src/api/routes.js';
import { SqliteRegistry } from '../src/registry/index.js';
import { newPublicKey, tempDirs } from './helpers.js';

// The client behind a reverse proxy, for the per-source limits: header
// parsing, which hops are believed, and the API keying its limiter on the
// result (over real TCP on 127.0.0.1 and over a Unix socket).

/** A request as node:http hands it over: the socket's peer and the headers. */
function fakeReq(remoteAddress: string | undefined, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage;
}

function client(trusted: string[], remote: string | undefined, headers: Record<string, string> = {}): string | number {
  try {
    return resolveClientAddress(fakeReq(remote, headers), new TrustedProxies(trusted));
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

describe('client address behind a reverse proxy', () => {
  it('parses X-Forwarded-For and Forwarded hops and their addresses', () => {
    assert.deepEqual(xForwardedFor('203.0.113.7, 10.0.0.2,10.0.0.3'), ['203.0.113.7', '10.0.0.2', '10.0.0.3']);
    assert.deepEqual(forwardedFor('for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"'), [
      '192.0.2.60',
      '"[2001:db8:cafe::17]:4711"',
    ]);
    assert.deepEqual(forwardedFor('For="_gazonk", proto=https, for="a,b;c", for=198.51.100.17'), [
      '"_gazonk"',
      '',
      '"a,b;c"',
      '198.51.100.17',
    ]);
    assert.equal(hopAddress('"[2001:db8:cafe::17]:4711"'), '2001:db8:cafe::17');
    assert.equal(hopAddress('[2001:db8::1]'), '2001:db8::1');
    assert.equal(hopAddress('2001:db8::1'), '2001:db8::1');
    assert.equal(hopAddress('192.0.2.60:8080'), '192.0.2.60');
    assert.equal(hopAddress('"192.0.2.60"'), '192.0.2.60');
    assert.equal(hopAddress('::ffff:192.0.2.60'), '192.0.2.60');
    assert.equal(hopAddress('"[::ffff:192.0.2.60]:80"'), '192.0.2.60');
    for (const bad of [
      'unknown',
      '"_gazonk"',
      '',
      'example.com',
      'example.com:80',
      '[192.0.2.1]:80',
      '999.1.1.1',
      '192.0.2.60:_port',
      '192.0.2.60:99999',
      '[2001:db8::1]x',
    ]) {
      assert.equal(hopAddress(bad), null, bad);
    }
  });

  it('matches trusted proxies by CIDR, IPv4-mapped peers as IPv4, and names a bad CIDR', () => {
    const t = new TrustedProxies(['10.0.0.0/8', '2001:db8::1', '192.0.2.128/25']);
    assert.ok(t.has('10.1.2.3'));
    assert.ok(t.has('::ffff:10.1.2.3'));
    assert.ok(t.has('2001:db8::1'));
    assert.ok(!t.has('2001:db8::2'));
    assert.ok(t.has('192.0.2.200'));
    assert.ok(!t.has('192.0.2.100'));
    assert.ok(!t.has('not an address'));
    assert.throws(() => new TrustedProxies(['10.0.0.0/33']), /^Error: --trusted-proxy: "10.0.0.0\/33" has prefix length/);
  });

  it('believes the headers only from a trusted peer, and takes the rightmost hop that is not a trusted proxy', () => {
    const xff = { 'x-forwarded-for': '198.51.100.1, 203.0.113.7, 10.0.0.5' };
    assert.equal(client([], '10.0.0.9', xff), '10.0.0.9', 'no proxy trusted: the header is ignored');
    assert.equal(client(['10.0.0.0/8'], '192.0.2.1', xff), '192.0.2.1', 'from an untrusted peer the header is ignored');
    assert.equal(client(['10.0.0.0/8'], '10.0.0.9', xff), '203.0.113.7', "past our own proxies; the client's own entries are not believed");
    assert.equal(client(['10.0.0.0/8'], '::ffff:10.0.0.9', xff), '203.0.113.7');
    assert.equal(
      client(['10.0.0.0/8'], '10.0.0.9', { 'x-forwarded-for': '10.0.0.7, 10.0.0.5' }),
      '10.0.0.7',
      'every hop trusted: the first',
    );
    assert.equal(
      client(['10.0.0.0/8'], '10.0.0.9', { forwarded: 'for=198.51.100.1, for="[2001:db8::7]:4711";proto=https' }),
      '2001:db8::7',
    );
    assert.equal(client(['10.0.0.0/8'], '10.0.0.9'), '10.0.0.9', 'a trusted proxy that names nobody is the client itself');
    assert.equal(
      client(['10.0.0.0/8'], '10.0.0.9', { 'x-forwarded-for': 'garbage, 203.0.113.7' }),
      '203.0.113.7',
      'what the client wrote left of its hop is never parsed',
    );
    assert.equal(client(['10.0.0.0/8'], '10.0.0.9', { 'x-forwarded-for': '203.0.113.7, unknown' }), 400, 'our proxy named no address');
    assert.equal(
      client(['10.0.0.0/8'], '10.0.0.9', { ...xff, forwarded: 'for=198.51.100.99' }),
      400,
      "both headers: one is the client's own",
    );
  });

  it('on a Unix socket requires a proxy header', () => {
    assert.equal(client([], undefined), 400);
    assert.equal(client([], undefined, { 'x-forwarded-for': '203.0.113.7' }), '203.0.113.7');
    assert.equal(client(['10.0.0.0/8'], undefined, { 'x-forwarded-for': '203.0.113.7, 10.0.0.5' }), '203.0.113.7');
  });

  describe('the API', () => {
    const tmp = tempDirs();
    const closing: (() => unknown)[] = [];
    after(async () => {
      for (const c of closing.reverse()) await c();
      tmp.cleanup();
    });

    async function serve(at: { path: string } | { host: string; port: number }, trustedProxies: string[]): Promise<ApiServer> {
      const registry = await SqliteRegistry.open({ location: join(tmp.make(), 'registry.db'), subnet6: 'fd00:aa::/64' });
      const api = await listenApi(
        createApiHandler({
          registry,
          authToken: 'a-registration-token',
          serverPublicKey: newPublicKey(),
          serverEndpoint: 'vpn.example.test:51820',
          mtu: 1420,
          dns: [],
          rateLimit: { burst: 2, perMinute: 1 },
          trustedProxies,
        }),
        at,
      );
      closing.push(
        () => registry.close(),
        () => api.close(),
      );
      return api;
    }

    /** A wrong-token registration attempt (every attempt counts against the limit): its status. */
    function attempt(
      to: { socketPath: string } | { host: string; port: number },
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: Record<string, unknown> }> {
      const body = JSON.stringify({ client_public_key: newPublicKey(), token: 'wrong' });
      return new Promise((resolve, reject) => {
        const req = http.request(
          { ...to, method: 'POST', path: '/v1/register', agent: false, headers: { 'content-type': 'application/json', ...headers } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    }

    it('keys the registration limit on X-Forwarded-For from a trusted proxy, and on the peer otherwise', async () => {
      const trusting = await serve({ host: '127.0.0.1', port: 0 }, ['127.0.0.1/32']);
      const to = { host: '127.0.0.1', port: (trusting.address as { port: number }).port };
      const as = (ip: string) => attempt(to, { 'x-forwarded-for': ip });
      assert.deepEqual(
        [(await as('203.0.113.1')).status, (await as('203.0.113.1')).status, (await as('203.0.113.1')).status],
        [401, 401, 429],
      );
      assert.equal((await as('203.0.113.2')).status, 401, 'another client behind the same proxy has its own bucket');
      assert.equal((await attempt(to)).status, 401, 'the proxy itself (no header) too');

      const plain = await serve({ host: '127.0.0.1', port: 0 }, []);
      const to2 = { host: '127.0.0.1', port: (plain.address as { port: number }).port };
      const statuses = [];
      for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) statuses.push((await attempt(to2, { 'x-forwarded-for': ip })).status);
      assert.deepEqual(statuses, [401, 401, 429], 'an untrusted peer cannot pick its bucket with the header');
    });

    it('on a Unix socket answers 400 JSON without a proxy header, and keys on it with one', async () => {
      const sock = join(tmp.make(), 'api.sock');
      await serve({ path: sock }, []);
      const none = await attempt({ socketPath: sock });
      assert.equal(none.status, 400);
      assert.match(String(none.body.error), /Unix socket the reverse proxy must name the client: X-Forwarded-For or Forwarded: for=/);
      const named = (ip: string) => attempt({ socketPath: sock }, { forwarded: `for=${ip}` });
      assert.deepEqual(
        [
          (await named('192.0.2.1')).status,
          (await named('192.0.2.1')).status,
          (await named('192.0.2.1')).status,
          (await named('192.0.2.2')).status,
        ],
        [401, 401, 429, 401],
      );
    });
  });
});
