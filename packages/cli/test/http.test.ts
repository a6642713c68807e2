// callApi (servers/http.ts) against a local HTTP server: the answers a user
// can act on when the API misbehaves (silent, huge, not JSON, a redirect, a
// refusal with Retry-After), and the request it sends.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ApiError, callApi } from '../src/servers/http.js';

describe('callApi', function () {
  this.timeout(20_000);
  let server: Server;
  let url: string;
  let reply: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  const call = (timeoutMs = 5_000) =>
    callApi(
      { method: 'POST', url: `${url}/v1/register`, token: 'T', body: '{"a":1}', timeoutMs, doing: 'register with' },
      'the registration',
    );

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => reply(req, res, body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends the token, the JSON body with its length, and returns the JSON answer', async () => {
    let seen: { headers: IncomingMessage['headers']; body: string } | undefined;
    reply = (req, res, body) => {
      seen = { headers: req.headers, body };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    };
    assert.deepEqual(await call(), { status: 200, body: { ok: true }, certificate: null });
    assert.equal(seen!.headers.authorization, 'Bearer T');
    assert.equal(seen!.headers['content-type'], 'application/json');
    assert.equal(seen!.headers['content-length'], '7');
    assert.equal(seen!.body, '{"a":1}');
  });

  it("a refusal carries the status, the server's error and Retry-After; a redirect is not followed", async () => {
    reply = (_req, res) => res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '7' }).end('{"error":"slow down"}');
    await assert.rejects(call(), (err: Error) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.message, `${url}/v1/register refused the registration: HTTP 429: slow down`);
      assert.equal(err.retryAfterSeconds, 7);
      return true;
    });
    reply = (_req, res) => res.writeHead(302, { Location: 'http://198.51.100.1/' }).end();
    await assert.rejects(call(), { message: `${url}/v1/register refused the registration: HTTP 302`, status: 302 });
  });

  it('says so when the answer is not JSON, too large, cut short, or does not come in time', async () => {
    reply = (_req, res) => res.writeHead(200).end('<html>');
    await assert.rejects(call(), { message: `${url}/v1/register: the answer is not a JSON object` });
    reply = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`{"pad":"${'x'.repeat(1100 * 1024)}`);
      res.end('"}');
    };
    await assert.rejects(call(), { message: `cannot register with ${url}/v1/register: the answer is larger than 1 MiB` });
    reply = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"cut":');
      res.socket!.destroy();
    };
    await assert.rejects(call(), { message: new RegExp(`^cannot register with ${url}/v1/register: `) });
    reply = () => {}; // never answers
    const t0 = Date.now();
    await assert.rejects(call(300), { message: `cannot register with ${url}/v1/register: no answer within 0.3 s` });
    assert.ok(Date.now() - t0 < 5_000);
  });

  it('names the error code when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(
      callApi({ method: 'GET', url: `http://127.0.0.1:${port}/v1/x`, token: '', timeoutMs: 5_000, doing: 'ask' }, 'it'),
      { message: `cannot ask http://127.0.0.1:${port}/v1/x: ECONNREFUSED` },
    );
  });
});
