// GET /readyz: 200 only while the server can do its job (the registry takes
// a write, WireGuard's socket is bound, the NAT is up); otherwise 503 naming
// what is not ready. /healthz stays liveness: the process answers at all.
// A probe costs a committed write and some syscalls, so one result serves
// every probe for a second, and concurrent probes share one run.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { sendJson } from './json.js';

/** One fact readiness rests on: resolves to null when it holds, else what is wrong. */
export type ReadinessCheck = () => Promise<string | null> | string | null;

export interface Readiness {
  ready: boolean;
  /** Each check's "ok" or its problem. */
  checks: Record<string, string>;
}

const REUSE_MS = 1000;

/** Runs the checks (at most once per second); a check that throws counts as its message. */
export function readinessOf(checks: Record<string, ReadinessCheck>): () => Promise<Readiness> {
  let last: { at: number; result: Promise<Readiness> } | undefined;
  const run = async (): Promise<Readiness> => {
    const names = Object.keys(checks);
    const results = await Promise.all(
      names.map(async (n) => {
        try {
          return (await checks[n]!()) ?? 'ok';
        } catch (err) {
          return (err as Error).message;
        }
      }),
    );
    const out: Record<string, string> = {};
    names.forEach((n, i) => (out[n] = results[i]!));
    return { ready: results.every((r) => r === 'ok'), checks: out };
  };
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= REUSE_MS) last = { at: now, result: run() };
    return last.result;
  };
}

/** The route's handler: 200 {"status":"ready", checks} or 503 {"error":"not ready: ...", checks}. */
export function readyzHandler(readiness: () => Promise<Readiness>): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (_req, res) => {
    const r = await readiness();
    if (r.ready) return sendJson(res, 200, { status: 'ready', checks: r.checks });
    const failing = Object.entries(r.checks)
      .filter(([, v]) => v !== 'ok')
      .map(([k]) => k);
    sendJson(res, 503, { error: `not ready: ${failing.join(', ')}`, checks: r.checks }, { 'retry-after': '1' });
  };
}

/** The same answer as a listener of its own, for the metrics port: GET and HEAD, any failure a JSON 500. */
export function readyzListener(readiness: () => Promise<Readiness>): RequestListener {
  const handler = readyzHandler(readiness);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return sendJson(res, 405, { error: `/readyz does not accept ${req.method}` }, { allow: 'GET, HEAD' });
    handler(req, res).catch((err: Error) => sendJson(res, 500, { error: `checking readiness failed: ${err.message}` }));
  };
}
