// One JSON request to a wirecagesrv API, with the errors a user can act on:
// no answer (and why), a certificate not trusted or not the pinned one, the
// server's own {"error"} message with the status, or an answer that is not
// JSON. node:http(s) rather than fetch: fetch takes no CA of its own and
// shows no certificate, and both are needed for --ca-file and its pin.
import http from 'node:http';
import https from 'node:https';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { RunError } from '../cage/run-error.js';

/** A non-2xx answer: the status and, on 429 or 503, the seconds Retry-After asks for (null when absent or not understood). */
export class ApiError extends RunError {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfterSeconds: number | null,
  ) {
    super(message);
  }
}

/** The server's certificate is not trusted (another CA, self-signed, expired, another name): nothing was sent. */
export class TlsTrustError extends RunError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - now) / 1000)) : null;
}

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
  /** The SHA-256 fingerprint ("AB:CD:…") of the server's leaf certificate over https; null over http. */
  certificate: string | null;
}

/** `add-server --ca-file`: the only CAs for this server, and the leaf certificate pinned on the first registration. */
export interface TlsTrust {
  /** PEM; a self-signed certificate is its own CA. */
  ca: string;
  /** The fingerprint the leaf must have; null until the first registration pins one. */
  pinnedCertificate: string | null;
  /** The error for a leaf with another fingerprint: what changed and how to re-pin. */
  mismatch: (seen: string, pinned: string) => Error;
}

export interface ApiCall {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  token: string;
  body?: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** For messages: "register with", "create the forward tcp 8080:80 at". */
  doing: string;
  tls?: TlsTrust;
  /** Added to the message when the certificate is not trusted (how to trust it). */
  trustHint?: string;
}

/** A hostile or broken server cannot make a run hold more than this of its answer. */
const MAX_ANSWER_BYTES = 1 << 20;

/** OpenSSL's verification failures and Node's name check: the certificate, not the network. */
function isCertificateError(code: string | undefined): code is string {
  return code !== undefined && /CERT|SELF_SIGNED|ISSUER|INVALID_CA|ALTNAME|UNABLE_TO_VERIFY|PATH_LENGTH/.test(code);
}

interface RawAnswer {
  status: number;
  text: string;
  retryAfter: string | null;
  certificate: string | null;
}

/** One request and its whole answer; the certificate is checked (and its pin) before anything is sent. */
function request(c: ApiCall): Promise<RawAnswer> {
  const u = new URL(c.url);
  const secure = u.protocol === 'https:';
  const pin: { error: Error | null } = { error: null };
  const options = requestOptions(c, secure, pin);
  return new Promise((resolve, reject) => {
    // Set before the request is destroyed, so whichever of its errors comes says why.
    let why: Error | null = null;
    let settled = false;
    let responded = false;
    const fail = (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      reject(pin.error ?? why ?? connectionError(c, err));
    };
    const stop = (err: Error) => {
      why ??= err;
      req.destroy(err);
    };
    const req = (secure ? https : http).request(u, options, (res) => {
      responded = true;
      const certificate = secure ? ((res.socket as TLSSocket).getPeerCertificate?.()?.fingerprint256 ?? null) : null;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES)
          stop(new RunError(`cannot ${c.doing} ${c.url}: the answer is larger than ${MAX_ANSWER_BYTES >> 20} MiB`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        const ra = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8'),
          retryAfter: typeof ra === 'string' ? ra : null,
          certificate,
        });
      });
      res.on('error', fail);
      res.on('close', () => fail(new Error('the connection closed before the whole answer')));
    });
    const timer = setTimeout(() => stop(new RunError(`cannot ${c.doing} ${c.url}: no answer within ${c.timeoutMs / 1000} s`)), c.timeoutMs);
    req.on('error', fail);
    req.on('close', () => {
      clearTimeout(timer);
      // After an answer began, its own events settle.
      if (!responded) fail(new Error('the connection closed without an answer'));
    });
    req.end(c.body);
  });
}

/** The headers, a connection of its own and, with `c.tls`, its CAs and the pin check, which leaves its error in `pin`. */
function requestOptions(c: ApiCall, secure: boolean, pin: { error: Error | null }): https.RequestOptions {
  const options: https.RequestOptions = {
    method: c.method,
    headers: {
      ...(c.body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(c.body)) } : {}),
      Accept: 'application/json',
      ...(c.token ? { Authorization: `Bearer ${c.token}` } : {}),
      ...c.headers,
    },
    // A connection of its own: a kept-alive one would skip the certificate checks below.
    agent: false,
  };
  const trust = c.tls;
  if (secure && trust) {
    options.ca = trust.ca;
    options.checkServerIdentity = (host: string, cert: PeerCertificate) => {
      const err = checkServerIdentity(host, cert);
      if (err) return err;
      if (trust.pinnedCertificate !== null && cert.fingerprint256 !== trust.pinnedCertificate) {
        pin.error = trust.mismatch(cert.fingerprint256, trust.pinnedCertificate);
        return pin.error;
      }
      return undefined;
    };
  }
  return options;
}

/** A request that failed on its own (not stopped by us): an untrusted certificate, or the network's error code. */
function connectionError(c: ApiCall, err: NodeJS.ErrnoException): Error {
  if (isCertificateError(err.code)) {
    const hint = c.trustHint ? `; ${c.trustHint}` : '';
    return new TlsTrustError(
      `cannot ${c.doing} ${c.url}: the server's TLS certificate is not trusted (${err.code}: ${err.message}), so nothing was sent${hint}`,
      err.code,
    );
  }
  return new RunError(`cannot ${c.doing} ${c.url}: ${err.code ?? err.message}`);
}

/** The answer of a 2xx; RunError otherwise, `refused` naming what was refused ("the registration"). */
export async function callApi(c: ApiCall, refused: string): Promise<ApiAnswer> {
  const res = await request(c);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = undefined;
  }
  if (res.status < 200 || res.status > 299) {
    const msg =
      body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string'
        ? (body as { error: string }).error
        : res.text.trim().slice(0, 200);
    throw new ApiError(
      `${c.url} refused ${refused}: HTTP ${res.status}${msg ? `: ${msg}` : ''}`,
      res.status,
      parseRetryAfter(res.retryAfter),
    );
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RunError(`${c.url}: the answer is not a JSON object`);
  return { status: res.status, body: body as Record<string, unknown>, certificate: res.certificate };
}
