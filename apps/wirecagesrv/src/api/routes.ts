// The HTTP API, compatible with the original wirecagesrv:
//   POST /v1/register  {token?, client_public_key} -> the client's tunnel settings
//   DELETE /v1/register {token?, client_public_key} -> the client deregisters (peers.ts)
//   POST/DELETE/GET /v1/portforward                -> port forwards (forwards.ts)
//   GET  /v1/peers     -> every registered peer, with the admin token (peers.ts)
//   GET  /v1/nodes     -> the servers sharing the registry, with the admin token (nodes.ts)
//   GET  /healthz      -> {"status": "ok"}
//   GET  /readyz       -> 200 when ready, else 503 naming what is not (readyz.ts)
//   POST /v1/reload    -> re-read the TLS and token files, with the admin token (reload.ts)
// Every answer is JSON; every error is {"error": "..."} with its status.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger, type RateLimiter } from '@wirecage/wg-engine';
import { registryUnavailable, type PeerRecord, type Registry } from '../registry/index.js';
import { routeLimit, type RateLimitOptions } from './caller.js';
import { trustProxiesFor, TrustedProxies } from './client-address.js';
import { DEFAULT_BODY_LIMIT } from './body.js';
import { HttpError } from './errors.js';
import { forwardHandlers, type ForwardApiOptions } from './forwards.js';
import { sendJson } from './json.js';
import { peerHandlers } from './peers.js';
import { nodesHandler } from './nodes.js';
import type { NodeInfo } from '../fleet/heartbeat.js';
import { registerHandler } from './register.js';
import { readyzHandler, type Readiness } from './readyz.js';
import { reloadHandler, type ReloadAnswer } from './reload.js';
import { apiRequestStats, countRequests, OTHER_ROUTE, type RequestStats } from './request-stats.js';

export type { RegisterResponse } from './register.js';

export interface ApiOptions {
  registry: Registry;
  authToken: string;
  /** Base64. */
  serverPublicKey: string;
  /** host:port clients are told to send WireGuard to. */
  serverEndpoint: string;
  /** Every host:port clients may use, serverEndpoint first; default [serverEndpoint]. */
  serverEndpoints?: string[];
  mtu: number;
  dns: string[];
  /** Seconds; advertised to clients. Default 25. */
  persistentKeepalive?: number;
  /** Routed into the tunnel by clients. Default 0.0.0.0/0 and ::/0. */
  allowedIps?: string[];
  /** Largest accepted request body in bytes. Default 16 KiB. */
  bodyLimit?: number;
  /** Registration attempts per source; a limiter may be shared. */
  rateLimit?: RateLimitOptions | RateLimiter;
  /** CIDRs of reverse proxies whose X-Forwarded-For / Forwarded name the client for the limits (client-address.ts). */
  trustedProxies?: string[];
  /** Called for each successful registration (new or repeated) before the answer is sent: puts the peer on the device. */
  onRegistered?: (peer: PeerRecord, created: boolean) => void;
  /**
   * Port forwards; without it /v1/portforward answers 404. Its key-proof verifier and admin token
   * also serve DELETE /v1/register (405 without it) and GET /v1/peers (404 without an admin token).
   */
  forwards?: ForwardApiOptions;
  /** Called when a peer is removed (DELETE /v1/register), after the registry forgot it: takes it off the device. */
  onRemoved?: (peer: PeerRecord) => void | Promise<void>;
  logger?: Logger;
  /** What GET /readyz reports; without it /readyz answers 404. */
  readiness?: () => Promise<Readiness>;
  /** What POST /v1/reload runs (with the admin token; a server without one answers 404 saying so); without it the route answers 404. */
  reload?: () => Promise<ReloadAnswer>;
  /** This server as GET /v1/nodes shows it (with the admin token); the route is not served without it. */
  node?: NodeInfo;
  /** Where requests are counted for the metrics; default the process's own (apiRequestStats). */
  requestStats?: RequestStats;
}

// A handler with nothing to wait for returns at once; dispatch awaits either kind and catches what either throws.
type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
type Routes = Record<string, Record<string, Handler>>;

export { sendJson };

export function createApiHandler(opts: ApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const log = opts.logger ?? silentLogger;
  const trusted = new TrustedProxies(opts.trustedProxies);
  const routes = apiRoutes(opts, opts.bodyLimit ?? DEFAULT_BODY_LIMIT, log);
  const routeOf = (path: string) => (Object.hasOwn(routes, path) ? path : OTHER_ROUTE);
  return countRequests(opts.requestStats ?? apiRequestStats, routeOf, (req, res) => {
    trustProxiesFor(req, trusted);
    dispatch(routes, req, res, log);
  });
}

/** Every route this server answers: registration and health always, forwards and peers with `opts.forwards`. */
function apiRoutes(opts: ApiOptions, bodyLimit: number, log: Logger): Routes {
  const limitRegistration = routeLimit(opts.rateLimit, 'registration attempts', { burst: 10, perMinute: 10 });
  const health: Handler = (_req, res) => sendJson(res, 200, { status: 'ok' });
  const routes: Routes = {
    '/v1/register': { POST: registerHandler(opts, limitRegistration, bodyLimit, log) },
    '/healthz': { GET: health, HEAD: health },
  };
  if (opts.readiness) {
    const ready = readyzHandler(opts.readiness);
    routes['/readyz'] = { GET: ready, HEAD: ready };
  }
  const f = opts.forwards;
  if (!f) return routes;
  routes['/v1/portforward'] = forwardHandlers({ registry: opts.registry, authToken: opts.authToken, bodyLimit, logger: log }, f);
  const peers = peerHandlers({
    registry: opts.registry,
    authToken: opts.authToken,
    adminToken: f.adminToken,
    proof: f.proof,
    manager: f.manager,
    bodyLimit,
    rateLimit: f.rateLimit,
    onRemoved: opts.onRemoved,
    logger: log,
  });
  routes['/v1/register']!.DELETE = peers.deregister;
  if (f.adminToken !== undefined) routes['/v1/peers'] = { GET: peers.list };
  if (f.adminToken !== undefined && opts.node)
    routes['/v1/nodes'] = { GET: nodesHandler(opts.registry, opts.node, f.adminToken, routeLimit(f.rateLimit, 'requests')) };
  if (opts.reload) routes['/v1/reload'] = { POST: reloadHandler(f.adminToken, opts.reload) };
  return routes;
}

/**
 * Runs the route's handler; its HttpError becomes that status, an unreachable registry 503, anything
 * else a 500 whose details only the log gets.
 */
function dispatch(routes: Routes, req: IncomingMessage, res: ServerResponse, log: Logger): void {
  const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
  const route = routes[path];
  const run = async (): Promise<void> => {
    if (!route) throw new HttpError(404, `no such endpoint: ${path}`);
    const handler = route[req.method ?? ''];
    if (!handler) throw new HttpError(405, `${path} does not accept ${req.method}`, { allow: Object.keys(route).join(', ') });
    await handler(req, res);
  };
  run().catch((err: unknown) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.message }, err.headers);
      return;
    }
    if (registryUnavailable(err)) {
      log.warn(`${req.method} ${path}: the registry is unreachable: ${(err as Error).message}`);
      sendJson(res, 503, { error: 'the registry is unreachable for now; retry shortly' }, { 'retry-after': '5' });
      return;
    }
    log.error(`${req.method} ${path}: ${(err as Error).message}`);
    sendJson(res, 500, { error: 'internal error; the server log has the details' });
  });
}
