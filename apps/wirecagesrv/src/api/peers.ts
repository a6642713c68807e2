// Registered peers: a client deregisters itself (DELETE /v1/register), the
// admin lists every peer (GET /v1/peers). Who may remove a peer is decided as
// for its port forwards (caller.ts): a client that proves its key, or the admin.
//
// Removing a peer (remove-peer.ts, shared with the lease expiry) takes it out
// of the registry (its forwards go with it, in the same DELETE), calls
// onRemoved, which takes it off the WireGuard device and cuts its flows
// through the NAT (the addresses may go to another peer next), and closes its
// forwards' listeners and every connection through them. The key may
// register again.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger, type RateLimiter } from '@wirecage/wg-engine';
import type { ForwardManager } from '../forwards/index.js';
import type { PeerRecord, Registry } from '../registry/index.js';
import { readJsonBody } from './body.js';
import { HttpError } from './errors.js';
import { sendJson } from './json.js';
import { callerRole, clientKey, isAdmin, proveKey, routeLimit, type RateLimitOptions } from './caller.js';
import { removePeer } from './remove-peer.js';
import type { ProofVerifier } from './proof.js';

/** One entry of GET /v1/peers. */
export interface PeerResponse {
  client_public_key: string;
  client_address: string;
  client_address6: string;
  created_at: string;
  /** The last completed handshake; absent before the first. */
  last_seen?: string;
  /** Where that handshake came from; absent before the first. */
  last_endpoint?: string;
  /** Port forwards recorded for the peer. */
  forwards: number;
  /** When its registration lapses unless renewed. */
  lease_expires: string;
}

export interface PeerApiOptions {
  registry: Registry;
  authToken: string;
  /** Lists and removes any peer without a proof; without it GET /v1/peers is not served. */
  adminToken?: string;
  proof: ProofVerifier;
  manager: ForwardManager;
  bodyLimit: number;
  /** Requests per source on these routes; default a burst of 60, 60 a minute. */
  rateLimit?: RateLimitOptions | RateLimiter;
  /** Called once a peer is out of the registry: takes it off the device. */
  onRemoved?: (peer: PeerRecord) => void | Promise<void>;
  logger?: Logger;
}

// As in routes.ts: a handler with nothing to wait for returns at once.
type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function peerHandlers(opts: PeerApiOptions): { deregister: Handler; list: Handler } {
  const { registry, manager } = opts;
  const log = opts.logger ?? silentLogger;
  const limit = routeLimit(opts.rateLimit, 'requests');

  const deregister: Handler = async (req, res) => {
    limit(req);
    const { value: body, raw } = await readJsonBody(req, opts.bodyLimit);
    const admin = callerRole(req, body, opts.authToken, opts.adminToken) === 'admin';
    const key = clientKey(body.client_public_key, true)!;
    if (!admin) await proveKey(opts.proof, req, body.client_public_key as string, raw);
    const peer = await registry.get(key);
    if (!peer) throw new HttpError(404, `no peer is registered with the key ${key}`);
    const forwards = await removePeer({ registry, manager, onRemoved: opts.onRemoved }, peer, (k) => registry.remove(k));
    if (!forwards) throw new HttpError(404, `no peer is registered with the key ${key}`);
    log.info(
      `removed peer ${key.slice(0, 8)}… (${peer.address4}, ${peer.address6}, ${forwards.length} forward(s)) at the ${admin ? "admin's" : "peer's own"} request`,
    );
    sendJson(res, 200, { removed: key });
  };

  const list: Handler = async (req, res) => {
    limit(req);
    if (!isAdmin(req, opts.adminToken)) {
      throw new HttpError(401, 'listing peers needs the admin token (wirecagesrv up --admin-token-file)', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    }
    const counts = new Map<string, number>();
    for (const f of await registry.forwards.list()) counts.set(f.peerPublicKey, (counts.get(f.peerPublicKey) ?? 0) + 1);
    const peers = (await registry.list()).map((p): PeerResponse => ({
      client_public_key: p.publicKey,
      client_address: p.address4,
      client_address6: p.address6,
      created_at: p.createdAt.toISOString(),
      ...(p.lastSeen ? { last_seen: p.lastSeen.toISOString() } : {}),
      ...(p.lastEndpoint ? { last_endpoint: p.lastEndpoint } : {}),
      forwards: counts.get(p.publicKey) ?? 0,
      lease_expires: p.leaseExpires.toISOString(),
    }));
    sendJson(res, 200, { peers });
  };

  return { deregister, list };
}
