// One JSON request to a wirecagesrv API, with the errors a user can act on:
// no answer (and why), the server's own {"error"} message with the status,
// or an answer that is not JSON.
import { RunError } from '../cage/from-config.js';

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
}

/** The answer of a 2xx; RunError otherwise, `refused` naming what was refused ("the registration"). */
export async function callApi(c: ApiCall, refused: string): Promise<ApiAnswer> {
  let res: Response;
  try {
    res = await fetch(c.url, {
      method: c.method,
      headers: {
        ...(c.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        Accept: 'application/json',
        ...(c.token ? { Authorization: `Bearer ${c.token}` } : {}),
        ...c.headers,
      },
      body: c.body,
      signal: AbortSignal.timeout(c.timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${c.timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new RunError(`cannot ${c.doing} ${c.url}: ${why}`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new RunError(`cannot ${c.doing} ${c.url}: reading the answer failed: ${(err as Error).message}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const msg = body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : text.trim().slice(0, 200);
    throw new ApiError(`${c.url} refused ${refused}: HTTP ${res.status}${msg ? `: ${msg}` : ''}`, res.status, parseRetryAfter(res.headers.get('retry-after')));
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RunError(`${c.url}: the answer is not a JSON object`);
  return { status: res.status, body: body as Record<string, unknown> };
}
