import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import { Counter, Registry } from 'prom-client';
import { HostPortError } from '@wirecage/wg-engine';
import { MetricsServer, parseListenAddress } from '../src/index.js';
import { parseExposition, value } from './fixtures/exposition.js';

describe('parseListenAddress', () => {
  it('takes host:port, [IPv6]:port and :port', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9586'), { host: '127.0.0.1', port: 9586 });
    assert.deepEqual(parseListenAddress('localhost:9586'), { host: 'localhost', port: 9586 });
    assert.deepEqual(parseListenAddress('[::1]:9586'), { host: '::1', port: 9586 });
    assert.deepEqual(parseListenAddress(':9586'), { host: undefined, port: 9586 });
    assert.deepEqual(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  });

  it('refuses what is not an address, naming the problem', () => {
    const cases: [string, RegExp][] = [
      ['9586', /expected host:port/],
      ['127.0.0.1:', /port "" is not a number/],
      ['127.0.0.1:65536', /port "65536" is not a number from 0 to 65535/],
      ['127.0.0.1:http', /port "http"/],
      ['::1:9586', /IPv6 address in brackets/],
      ['[127.0.0.1]:9586', /"127.0.0.1" is not an IPv6 address/],
      ['bad host:9586', /"bad host" is not an IPv4 address or host name/],
    ];
    for (const [text, why] of cases) {
      assert.throws(
        () => parseListenAddress(text),
        (err: Error) => err instanceof HostPortError && why.test(err.message) && err.message.startsWith(`metrics address "${text}": `),
        text,
      );
    }
  });
});

describe('MetricsServer', () => {
  let registry: Registry;
  let server: MetricsServer | undefined;

  beforeEach(() => {
    registry = new Registry();
    new Counter({ name: 'demo_total', help: 'A demo counter.', labelNames: ['k'], registers: [registry] }).inc({ k: 'v' }, 3);
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  function get(
    path: string,
    method = 'GET',
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    const { port } = server!.address;
    return new Promise((resolve, reject) => {
      const req = request({ host: server!.address.host ?? '127.0.0.1', port, path, method }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('serves the registry at /metrics in the text format, with its content type', async () => {
    server = await MetricsServer.listen('127.0.0.1:0', registry);
    assert.ok(server.address.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.address.port}/metrics`);
    const res = await get('/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.body, await registry.metrics());
    assert.equal(value(parseExposition(res.body), 'demo_total', { k: 'v' }), 3);
    assert.equal((await get('/metrics?x=1')).status, 200, 'a query string does not change the path');
  });

  it('answers HEAD without a body', async () => {
    server = await MetricsServer.listen('127.0.0.1:0', registry);
    const res = await get('/metrics', 'HEAD');
    assert.equal(res.status, 200);
    assert.equal(res.body, '');
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(await registry.metrics()));
  });

  it('answers other paths with 404 and other methods with 405, in JSON', async () => {
    server = await MetricsServer.listen('127.0.0.1:0', registry);
    for (const path of ['/', '/metric', '/metrics/', '/healthz']) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(res.body), { error: 'not found: metrics are at /metrics' });
    }
    const post = await get('/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.deepEqual(JSON.parse(post.body), { error: 'method POST not allowed: use GET' });
  });

  it('answers 500 in JSON when collecting fails, and keeps serving', async () => {
    let fail = true;
    new Counter({
      name: 'flaky_total',
      help: 'Fails once.',
      registers: [registry],
      collect() {
        if (fail) {
          fail = false;
          throw new Error('source gone');
        }
      },
    });
    server = await MetricsServer.listen('127.0.0.1:0', registry);
    const bad = await get('/metrics');
    assert.equal(bad.status, 500);
    assert.deepEqual(JSON.parse(bad.body), { error: 'collecting metrics failed: source gone' });
    assert.equal((await get('/metrics')).status, 200);
  });

  it('listens on IPv6 loopback', async () => {
    server = await MetricsServer.listen('[::1]:0', registry);
    assert.equal(server.address.host, '::1');
    assert.equal(server.url, `http://[::1]:${server.address.port}/metrics`);
    assert.equal((await fetch(server.url)).status, 200);
  });

  it('says which address is taken when the port is in use', async () => {
    server = await MetricsServer.listen('127.0.0.1:0', registry);
    const taken = `127.0.0.1:${server.address.port}`;
    await assert.rejects(MetricsServer.listen(taken, registry), {
      message: `cannot serve metrics on ${taken}: the address is already in use (another exporter or cage?); pick another port`,
    });
  });

  it('refuses a malformed address before listening', async () => {
    await assert.rejects(MetricsServer.listen('nope', registry), HostPortError);
  });

  it('closes with a keep-alive scraper still connected, and then refuses connections', async () => {
    server = await MetricsServer.listen('127.0.0.1:0', registry);
    const { port } = server.address;
    const agent = new Agent({ keepAlive: true });
    try {
      await new Promise<void>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
      const started = Date.now();
      await server.close();
      await server.close();
      assert.ok(Date.now() - started < 1000, 'close() does not wait for the idle connection to time out');
      await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
    } finally {
      agent.destroy();
    }
  });
});
