// How the API fuzz talks to the server: node:http over keep-alive connections
// for well-formed requests, raw TCP for what node:http cannot or will not send
// (truncated, stalled, slow and oversized bodies, bad framing, bytes outside
// Latin-1), with a small HTTP/1.1 response reader.
import http from 'node:http';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface Req {
  method: string;
  /** The request target as sent. */
  path: string;
  /** In order; names and values as sent (raw requests send them as UTF-8). */
  headers: [string, string][];
  body?: Buffer;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What node:http's client refuses to send: it must go raw. */
export function needsRaw(req: Req): boolean {
  const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
  if (!token.test(req.method) || /[^\u0021-\u00ff]/.test(req.path)) return true;
  return req.headers.some(([k, v]) => !token.test(k) || /[^\t\u0020-\u007e\u0080-\u00ff]/.test(v));
}

/** A request's bytes: request line, headers (Host first unless given), blank line, body. */
export function serialize(req: Req, opts: { host?: string | null; contentLength?: boolean } = {}): Buffer {
  const lines = [`${req.method} ${req.path} HTTP/1.1`];
  const has = (n: string) => req.headers.some(([k]) => k.toLowerCase() === n);
  if (opts.host !== null && !has('host')) lines.push(`Host: ${opts.host ?? 'api.lab'}`);
  for (const [k, v] of req.headers) lines.push(`${k}: ${v}`);
  if (req.body && opts.contentLength !== false && !has('content-length') && !has('transfer-encoding'))
    lines.push(`Content-Length: ${req.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), req.body ?? Buffer.alloc(0)]);
}

export class HttpSender {
  private readonly agent: http.Agent;

  constructor(
    private readonly host: string,
    private readonly port: number,
    sockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  /**
   * One request over a kept-alive connection. A reset of a reused connection before any answer is the
   * keep-alive race (the server closed it as idle as we sent): that one is sent again, once.
   */
  async send(req: Req, timeoutMs: number): Promise<Answer> {
    try {
      return await this.once(req, timeoutMs);
    } catch (err) {
      if ((err as { reused?: boolean }).reused && (err as NodeJS.ErrnoException).code === 'ECONNRESET') return this.once(req, timeoutMs);
      throw err;
    }
  }

  private once(req: Req, timeoutMs: number): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of req.headers) {
        const have = headers[k];
        headers[k] = have === undefined ? v : [...(Array.isArray(have) ? have : [have]), v];
      }
      // node:http frames a GET's or DELETE's body only when told its length: unframed, it would read as the next request.
      if (req.body && !req.headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k)))
        headers['Content-Length'] = String(req.body.length);
      const r = http.request(
        { host: this.host, port: this.port, method: req.method, path: req.path, headers, agent: this.agent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const h: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) h[k] = Array.isArray(v) ? v.join(', ') : (v ?? '');
            resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      r.on('timeout', () => r.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      r.on('error', (err) => reject(Object.assign(err, { reused: r.reusedSocket })));
      r.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** How a raw exchange goes: what is written, when, and how many answers to read. */
export interface RawPlan {
  /** Written in order; `pauseMs` waits before a part is written. */
  parts: { data: Buffer; pauseMs?: number }[];
  /** Half-close after the last part (the server sees the end of the stream). */
  halfClose?: boolean;
  /** Answers to read before closing; fewer is fine when the server closes first. */
  answers: number;
  /** Methods of the requests answered in order (a HEAD answer has no body). */
  heads?: boolean[];
  timeoutMs: number;
  /** Stop writing once an answer has begun (what a client sending a large body should do). */
  stopOnAnswer?: boolean;
}

export interface RawResult {
  answers: Answer[];
  /** Why the exchange ended: 'answered', 'closed', 'reset', 'timeout'. */
  end: 'answered' | 'closed' | 'reset' | 'timeout';
  /** Bytes received that are not a whole answer. */
  rest: number;
}

/** Parses whole answers off the front of `buf`; returns them and what is left. */
export function parseAnswers(buf: Buffer, heads: boolean[], closed: boolean): { answers: Answer[]; rest: Buffer } {
  const answers: Answer[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
    if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) {
        const k = l.slice(0, i).trim().toLowerCase();
        const v = l.slice(i + 1).trim();
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      }
    }
    const bodyAt = end + 4;
    if (status >= 100 && status < 200) {
      at = bodyAt;
      continue;
    }
    const head = heads[answers.length] ?? false;
    let bodyEnd: number;
    if (head || status === 204 || status === 304) bodyEnd = bodyAt;
    else if (headers['content-length'] !== undefined) {
      bodyEnd = bodyAt + Number(headers['content-length']);
      if (bodyEnd > buf.length) break;
    } else if (closed)
      bodyEnd = buf.length; // no length: the body runs to the close (chunked left undecoded: not ours)
    else break;
    answers.push({ status, headers, body: buf.subarray(bodyAt, bodyEnd) });
    at = bodyEnd;
  }
  return { answers, rest: buf.subarray(at) };
}

/** One raw TCP exchange with the server. */
export function rawExchange(host: string, port: number, plan: RawPlan): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let done = false;
    let answered: Answer[] = [];
    const heads = plan.heads ?? [];
    const finish = (end: RawResult['end']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const closed = end !== 'answered' && end !== 'timeout';
      let rest = buf.length;
      try {
        const p = parseAnswers(buf, heads, closed);
        answered = p.answers;
        rest = p.rest.length;
      } catch {
        // left as unparsed bytes
      }
      sock.destroy();
      resolve({ answers: answered, end, rest });
    };
    const timer = setTimeout(() => finish('timeout'), plan.timeoutMs);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      try {
        if (parseAnswers(buf, heads, false).answers.length >= plan.answers) finish('answered');
      } catch {
        finish('closed');
      }
    });
    sock.on('end', () => finish('closed'));
    sock.on('close', () => finish('closed'));
    // A reset after answers arrived is the server closing on a body it would not read; before, it is no answer.
    sock.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'closed'));
    sock.once('connect', () => {
      void (async () => {
        for (const part of plan.parts) {
          if (part.pauseMs) await delay(part.pauseMs);
          if (done || (plan.stopOnAnswer && buf.length > 0)) return;
          if (!sock.write(part.data)) await new Promise<void>((res) => (sock.once('drain', res), sock.once('close', res)));
        }
        if (plan.halfClose && !done) sock.end();
      })();
    });
  });
}
