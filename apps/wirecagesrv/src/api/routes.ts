// The HTTP API, compatible with the original wirecagesrv:
//   POST /v1/register  {token?, client_public_key} -> the client's tunnel settings
//   DELETE /v1/register {token?, client_public_key} -> the client deregisters (peers.ts)
//   POST/DELETE/GET /v1/portforward                -> port forwards (forwards.ts)
//   GET  /v1/peers     -> every registered peer, with the admin token (peers.ts)
//   GET  /healthz      -> {"status": "ok"}
// Every answer is JSON; every error is {"error": "..."} with its status.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generatePrivateKey, keyProofKey, keyToBase64, parseKeyBase64, silentLogger, type Logger, type RateLimiter } from '@wirecage/wg-engine';
import { RegistryFullError, type PeerRecord, type Registry } from '../registry/index.js';
import { authorize } from './auth.js';
import { routeLimit, type RateLimitOptions } from './caller.js';
import { trustProxiesFor, TrustedProxies } from './client-address.js';
import { DEFAULT_BODY_LIMIT, readJsonObject } from './body.js';
import { HttpError } from './errors.js';
import { forwardHandlers, type ForwardApiOptions } from './forwards.js';
import { sendJson } from './json.js';
import { peerHandlers } from './peers.js';

export interface RegisterResponse {
  client_address: string;
  client_address6: string;
  server_public_key: string;
  server_endpoint: string;
  dns: string[];
  mtu: number;
  allowed_ips: string[];
  persistent_keepalive: number;
  /** When the registration lapses unless renewed (RFC 3339, UTC): registering again or a handshake renews it. */
  lease_expires: string;
}

export interface ApiOptions {
  registry: Registry;
  authToken: string;
  /** Base64. */
  serverPublicKey: string;
  /** host:port clients are told to send WireGuard to. */
  serverEndpoint: string;
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
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const probe = generatePrivateKey();
/**
 * A point of small order gives the all-zero X25519 result with every private key, so no handshake
 * with it can ever complete: registering it would only hold an address. keyProofKey is the engine's
 * exported X25519 that says so (null).
 */
function smallOrder(key: Buffer): boolean {
  const shared = keyProofKey(probe, key, key, key);
  shared?.fill(0);
  return shared === null;
}

export { sendJson };

export function createApiHandler(opts: ApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const log = opts.logger ?? silentLogger;
  const limitRegistration = routeLimit(opts.rateLimit, 'registration attempts', { burst: 10, perMinute: 10 });
  const trusted = new TrustedProxies(opts.trustedProxies);
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const pool = opts.registry.pool;
  const prefix4 = pool.subnet4.cidr.prefix;
  const prefix6 = pool.subnet6.cidr.prefix;

  const register: Handler = async (req, res) => {
    limitRegistration(req);
    const body = await readJsonObject(req, bodyLimit);
    authorize(req, body, opts.authToken);
    const keyText = body.client_public_key;
    if (typeof keyText !== 'string') throw new HttpError(400, '"client_public_key" (a base64 WireGuard public key) is required');
    let key: Buffer;
    try {
      key = parseKeyBase64(keyText, '"client_public_key"');
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const publicKey = keyToBase64(key);
    if (publicKey === opts.serverPublicKey) throw new HttpError(400, '"client_public_key" is the server\'s own public key');
    if (smallOrder(key)) throw new HttpError(400, '"client_public_key" is a point of small order, with which no WireGuard handshake can complete; generate the key with `wg genkey`');
    let result: { peer: PeerRecord; created: boolean };
    try {
      result = opts.registry.register(publicKey);
    } catch (err) {
      if (err instanceof RegistryFullError) throw new HttpError(503, `no address is free: ${err.message}`);
      throw err;
    }
    opts.onRegistered?.(result.peer, result.created);
    if (result.created) log.info(`registered peer ${publicKey.slice(0, 8)}… as ${result.peer.address4}, ${result.peer.address6}`);
    const answer: RegisterResponse = {
      client_address: `${result.peer.address4}/${prefix4}`,
      client_address6: `${result.peer.address6}/${prefix6}`,
      server_public_key: opts.serverPublicKey,
      server_endpoint: opts.serverEndpoint,
      dns: opts.dns,
      mtu: opts.mtu,
      allowed_ips: opts.allowedIps ?? ['0.0.0.0/0', '::/0'],
      persistent_keepalive: opts.persistentKeepalive ?? 25,
      lease_expires: result.peer.leaseExpires.toISOString(),
    };
    sendJson(res, 200, answer);
  };

  const health: Handler = async (_req, res) => sendJson(res, 200, { status: 'ok' });

  const routes: Record<string, Record<string, Handler>> = {
    '/v1/register': { POST: register },
    '/healthz': { GET: health, HEAD: health },
  };
  if (opts.forwards) {
    routes['/v1/portforward'] = forwardHandlers({ registry: opts.registry, authToken: opts.authToken, bodyLimit, logger: log }, opts.forwards);
    const f = opts.forwards;
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
  }

  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
    const route = routes[path];
    trustProxiesFor(req, trusted);
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
      log.error(`${req.method} ${path}: ${(err as Error).message}`);
      sendJson(res, 500, { error: 'internal error; the server log has the details' });
    });
  };
}
