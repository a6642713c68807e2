// The API fuzz's cases below HTTP's well-formedness, sent over raw TCP:
// malformed framing (400; 431 for oversized heads), bodies truncated by a
// half-close (400), stalled heads and bodies (408, when the server's timeouts
// fire), bodies over the 16 KiB limit up to 1 MiB, declared or chunked (413),
// a Content-Length shorter than the body (the rest is a second, malformed
// request), pipelines, slow senders, and the corners node:http handles itself
// (CONNECT, Expect, Upgrade, HTTP/1.0, no Host, chunked bodies).
import { BODY_LIMIT, HttpCases, type Expect, type HttpCase } from './fuzz-cases.js';
import { serialize, type RawPlan, type Req } from './fuzz-http.js';
import type { Prng } from './prng.js';
import { keyText } from './fuzz-values.js';

export interface RawCase {
  kind: 'raw';
  family: string;
  plan: RawPlan;
  /** The answers, in order. */
  expect: Expect[];
  /** Requests this exchange makes, for the count. */
  requests: number;
  /** Ends with the server's timeouts (408): run apart from the rest, all at once. */
  stall?: boolean;
}

/** The server's timeouts (apps/wirecagesrv/src/api/listen.ts): heads within 10 s, whole requests within 15 s. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** How long any answer may take here, timeouts aside (a slow machine included). */
const ANSWER_MS = 20_000;

const H = 'Host: api.lab\r\n';

export class RawCases {
  constructor(
    private readonly http: HttpCases,
    private readonly r: Prng,
  ) {}

  private plan(data: Buffer, answers: number, more: Partial<RawPlan> = {}): RawPlan {
    return { parts: [{ data }], answers, timeoutMs: ANSWER_MS, ...more };
  }

  /** A request of a body route that the server reads whole before answering: a wrong token, so 401. */
  private readsBody(): { req: Req; status: number } {
    const route = this.r.pick(['register', 'deregister', 'pf-post', 'pf-delete'] as const);
    const fields: Record<string, string> = { client_public_key: keyText(this.r) };
    const req = this.http.request(route, { auth: this.http.wrongAuth(), body: fields });
    return { req, status: 401 };
  }

  /** One well-formed single-request case of the HTTP families, not a HEAD (its answer has no body to frame). */
  private single(): HttpCase & { steps: [HttpCase['steps'][0]] } {
    for (;;) {
      const c = this.http.next();
      if (c.steps.length === 1 && c.steps[0]!.req.method !== 'HEAD') return c as HttpCase & { steps: [HttpCase['steps'][0]] };
    }
  }

  /** Framing and syntax the parser refuses (400), or heads too large (431). */
  malformed(): RawCase {
    const r = this.r;
    const { req } = this.readsBody();
    const body = req.body!;
    const head = (extra: string, method = 'POST', target = '/v1/register', version = 'HTTP/1.1') =>
      Buffer.from(`${method} ${target} ${version}\r\n${H}Content-Type: application/json\r\n${extra}`, 'latin1');
    const v = r.pick<() => [Buffer, number]>([
      () => [
        Buffer.concat([
          head(`Content-Length: ${body.length}\r\n\r\n`, r.pick(['FOO', 'get', 'P0ST', 'GET\t', 'POST/']), '/v1/register'),
          body,
        ]),
        400,
      ],
      () => [Buffer.concat([Buffer.from([r.int(0, 31) | 0x80]), r.bytes(r.int(0, 300)), Buffer.from('\r\n\r\n')]), 400],
      () => [
        Buffer.concat([
          head(
            `Content-Length: ${body.length}\r\n\r\n`,
            'POST',
            '/v1/register',
            r.pick(['HTTP/1.2', 'HTTP/3.0', 'HTTP/1', 'HTTX/1.1', 'HTTP/1.1 x']),
          ),
          body,
        ]),
        400,
      ],
      () => [
        Buffer.concat([
          head(
            `${r.pick(['Bad Header: x', 'NoColon', 'X-A: a\x01b', 'X-A: a\x00b', 'X-A: a\r\n  folded', '(x): y', ': empty'])}\r\nContent-Length: ${body.length}\r\n\r\n`,
          ),
          body,
        ]),
        400,
      ],
      () => [
        Buffer.concat([
          head(`Content-Length: ${r.pick(['abc', '-1', '+3', '3 3', '0x10', '1e3', '99999999999999999999999', ''])}\r\n\r\n`),
          body,
        ]),
        400,
      ],
      () => [Buffer.concat([head(`Content-Length: ${body.length}\r\nContent-Length: ${body.length + r.int(0, 1)}\r\n\r\n`), body]), 400],
      () => [Buffer.concat([head(`Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n`), body]), 400],
      () => [Buffer.concat([head(`Transfer-Encoding: ${r.pick(['gzip', 'chunked, gzip', 'identity', 'chunkedx'])}\r\n\r\n`), body]), 400],
      () => [
        Buffer.concat([
          head('Transfer-Encoding: chunked\r\n\r\n'),
          Buffer.from(`${r.pick(['zz', '-1', 'fffffffffffffffffff', ' 5'])}\r\n`),
          body,
          Buffer.from('\r\n0\r\n\r\n'),
        ]),
        400,
      ],
      () => [
        Buffer.concat([
          head(
            `Content-Length: ${body.length}\r\n\r\n`,
            'POST',
            `/v1/${Buffer.from([0xc3, 0xa9]).toString('latin1')}${'x'.repeat(r.int(0, 5))}`,
          ),
          body,
        ]),
        400,
      ],
      () => [Buffer.concat([head(`Content-Length: ${body.length}\r\n\r\n`, 'POST', `/v1/re gister`), body]), 400],
      () => [Buffer.from(`GET /${'a'.repeat(r.int(17_000, 40_000))} HTTP/1.1\r\n${H}\r\n`), 431],
      () => [Buffer.from(`GET /healthz HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(r.int(17_000, 40_000))}\r\n\r\n`), 431],
      // The HTTP/2 preface on an HTTP/1.1 port.
      () => [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 400],
    ])();
    // The end of the stream makes an incomplete request an error too, so every variant gets its answer now.
    return {
      kind: 'raw',
      family: v[1] === 431 ? '431 head too large' : '400 malformed HTTP',
      plan: this.plan(v[0], 1, { halfClose: true }),
      expect: [{ status: [v[1]] }],
      requests: 1,
    };
  }

  /** A body cut short by the end of the stream (400), whole or chunked. */
  truncated(): RawCase {
    const { req } = this.readsBody();
    const body = req.body!;
    const cut = this.r.int(0, body.length - 1);
    const chunked = this.r.chance(0.3);
    const head = serialize({
      ...req,
      body: undefined,
      headers: [...req.headers, chunked ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(body.length + this.r.int(0, 100))]],
    });
    const data = Buffer.concat([head, chunked ? Buffer.from(`${body.length.toString(16)}\r\n`) : Buffer.alloc(0), body.subarray(0, cut)]);
    return {
      kind: 'raw',
      family: '400 truncated body',
      plan: this.plan(data, 1, { halfClose: true }),
      expect: [{ status: [400], error: /ended before it was complete|malformed/ }],
      requests: 1,
    };
  }

  /** A head or body that stops coming, the connection left open: the server's timeout answers (408). */
  stalled(): RawCase {
    const { req } = this.readsBody();
    const full = serialize(req);
    const v = this.r.int(0, 2);
    const headEnd = full.indexOf('\r\n\r\n') + 4;
    const data =
      v === 0
        ? full.subarray(0, this.r.int(1, headEnd - 3))
        : v === 1
          ? full.subarray(0, this.r.int(headEnd, full.length - 1))
          : Buffer.alloc(0);
    const bound = v === 1 ? REQUEST_TIMEOUT_MS : HEADERS_TIMEOUT_MS;
    // Each timeout is checked once a second by the server; twice that and a slow machine's margin on top.
    return {
      kind: 'raw',
      family: '408 stalled',
      plan: { parts: data.length ? [{ data }] : [], answers: 1, timeoutMs: bound + ANSWER_MS },
      expect: [{ status: [408] }],
      requests: 1,
      stall: true,
    };
  }

  /** Bodies from the limit to 1 MiB, declared by Content-Length or chunked: 413 past the limit (415 first for a wrong type). */
  big(): RawCase {
    const r = this.r;
    const size = r.pick([BODY_LIMIT, BODY_LIMIT + 1, 65_536, 1 << 20, 1 << 20, r.int(BODY_LIMIT + 1, 1 << 20)]);
    const { req, expect } = this.http.bigBody(size);
    const badType = r.chance(0.15);
    if (badType) req.headers = req.headers.map(([k, v]) => [k, k === 'Content-Type' ? 'text/plain' : v]);
    const chunked = r.chance(0.4);
    const body = req.body!;
    const head = serialize({
      ...req,
      body: undefined,
      headers: [...req.headers, chunked ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(body.length)]],
    });
    const parts = [{ data: head }];
    for (let at = 0; at < body.length; at += 65_536) {
      const piece = body.subarray(at, at + 65_536);
      parts.push({ data: chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece });
    }
    if (chunked) parts.push({ data: Buffer.from('0\r\n\r\n') });
    const status = badType ? [415] : expect.status;
    return {
      kind: 'raw',
      family: size > BODY_LIMIT && !badType ? '413 body too large' : `${status[0]} body at the limit`,
      plan: { parts, answers: 1, timeoutMs: ANSWER_MS, stopOnAnswer: true },
      expect: [{ status }],
      requests: 1,
    };
  }

  /** A Content-Length shorter than the body: the request, then its leftover parsed as a malformed second one (400). */
  shortLength(): RawCase {
    const { req, status } = this.readsBody();
    const junk = Buffer.from(this.r.pick(['}', '"x"}', '\u0001garbage', ',"y":[1,2]}', '{not http}']));
    const data = Buffer.concat([serialize(req), junk, Buffer.from('\r\n\r\n')]);
    return {
      kind: 'raw',
      family: 'short Content-Length',
      plan: this.plan(data, 2, { halfClose: true }),
      expect: [{ status: [status] }, { status: [400] }],
      requests: 2,
    };
  }

  /** 2-5 requests written at once on one connection: answered in order. */
  pipeline(): RawCase {
    const cases = Array.from({ length: this.r.int(2, 5) }, () => this.single());
    const data = Buffer.concat(cases.map((c) => serialize(c.steps[0].req)));
    return {
      kind: 'raw',
      family: 'pipelined',
      plan: this.plan(data, cases.length),
      expect: cases.map((c) => c.steps[0].expect),
      requests: cases.length,
    };
  }

  /** A request written in 5-40 pieces with pauses (under 3 s in all): answered as if sent at once. */
  slow(): RawCase {
    const c = this.single();
    const data = serialize(c.steps[0].req);
    const n = this.r.int(5, 40);
    const parts = Array.from({ length: n }, (_, i) => ({
      data: data.subarray(Math.floor((i * data.length) / n), Math.floor(((i + 1) * data.length) / n)),
      pauseMs: this.r.int(5, 70),
    }));
    return {
      kind: 'raw',
      family: `slow: ${c.family}`,
      plan: { parts, answers: 1, timeoutMs: ANSWER_MS },
      expect: [c.steps[0].expect],
      requests: 1,
    };
  }

  /** The corners node:http handles before the API sees the request. */
  corner(): RawCase {
    const r = this.r;
    const c = this.single();
    const req = c.steps[0].req;
    const ok = c.steps[0].expect;
    const v = r.int(0, 7);
    const one = (family: string, data: Buffer, expect: Expect, more: Partial<RawPlan> = {}): RawCase => ({
      kind: 'raw',
      family,
      plan: this.plan(data, 1, more),
      expect: [expect],
      requests: 1,
    });
    switch (v) {
      case 0:
        return one(`Expect: 100-continue: ${c.family}`, serialize({ ...req, headers: [...req.headers, ['Expect', '100-continue']] }), ok);
      case 1:
        return one(
          '417 Expect',
          serialize({ ...req, headers: [...req.headers, ['Expect', r.pick(['200-ok', 'x', '101-switch', 'continue'])]] }),
          { status: [417] },
        );
      case 2:
        return one(
          `Upgrade: ${c.family}`,
          serialize({ ...req, headers: [...req.headers, ['Connection', 'Upgrade'], ['Upgrade', r.pick(['websocket', 'h2c', 'foo/1'])]] }),
          ok,
        );
      case 3: {
        const one0 = serialize(req);
        return one(`HTTP/1.0: ${c.family}`, Buffer.from(one0.toString('latin1').replace(/ HTTP\/1\.1\r\n/, ' HTTP/1.0\r\n'), 'latin1'), ok);
      }
      case 4:
        return one('400 no Host', serialize(req, { host: null }), { status: [400], error: /Host/ });
      case 5: {
        if (!req.body) return one(`${c.family}`, serialize(req), ok);
        const body = req.body;
        const head = serialize({ ...req, body: undefined, headers: [...req.headers, ['Transfer-Encoding', 'chunked']] });
        const chunks = [];
        for (let at = 0; at < body.length;) {
          const n = Math.min(body.length - at, r.int(1, 64));
          chunks.push(Buffer.from(`${n.toString(16)}${r.chance(0.1) ? ';ext=1' : ''}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'));
          at += n;
        }
        return one(`chunked: ${c.family}`, Buffer.concat([head, ...chunks, Buffer.from('0\r\n\r\n')]), ok);
      }
      case 6:
        return one(
          '405 CONNECT',
          Buffer.from(`CONNECT ${r.pick(['api.lab:443', '10.0.0.1:22', '[::1]:80'])} HTTP/1.1\r\nHost: api.lab\r\n\r\n`),
          { status: [405] },
        );
      default:
        return one('404 OPTIONS *', Buffer.from(`OPTIONS * HTTP/1.1\r\n${H}\r\n`), { status: [404] });
    }
  }

  next(): RawCase {
    const f = this.r.weighted({ malformed: 4, truncated: 2, big: 1.5, shortLength: 1, pipeline: 2, slow: 0.6, corner: 2.5 });
    return this[f]();
  }
}
