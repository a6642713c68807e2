// /v1/portforward: create (POST), remove (DELETE) and list (GET) port forwards.
//
// Who may touch a forward: a client that proves its key, for that key's
// forwards only, or the admin (caller.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger, type RateLimiter } from '@wirecage/wg-engine';
import { ForwardBindError, formatPortRange, inPortRange, type ForwardManager } from '../forwards/index.js';
import { ForwardConflictError, type ForwardProtocol, type ForwardRecord, type PeerRecord, type Registry } from '../registry/index.js';
import { readJsonBody } from './body.js';
import { HttpError } from './errors.js';
import { sendJson } from './json.js';
import { callerRole, clientKey, proveKey, routeLimit, type CallerRole, type RateLimitOptions } from './caller.js';
import type { ProofVerifier } from './proof.js';

export const DEFAULT_MAX_FORWARDS_PER_PEER = 32;

export interface ForwardApiOptions {
  manager: ForwardManager;
  proof: ProofVerifier;
  /** Manages every forward without a proof; none when undefined. */
  adminToken?: string;
  /** Requests per source on this route; default a burst of 60, 60 a minute. */
  rateLimit?: RateLimitOptions | RateLimiter;
  maxPerPeer?: number;
}

export interface ForwardResponse {
  protocol: ForwardProtocol;
  public_port: number;
  target_port: number;
  client_public_key: string;
  client_address: string;
  client_address6: string;
  /** The address the public port is bound on ("0.0.0.0": every IPv4 address of the server). */
  listen_address: string;
  /** The public port is bound now (false when it could not be bound again after a restart). */
  active: boolean;
  created_at: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

interface Common {
  registry: Registry;
  authToken: string;
  bodyLimit: number;
  logger?: Logger;
}

export function forwardHandlers(common: Common, opts: ForwardApiOptions): Record<'GET' | 'POST' | 'DELETE', Handler> {
  const { registry, manager, proof } = { ...common, ...opts };
  const log = common.logger ?? silentLogger;
  const maxPerPeer = opts.maxPerPeer ?? DEFAULT_MAX_FORWARDS_PER_PEER;
  // Ports being bound right now: a second request for one gets 409, not a bind error.
  const pending = new Set<string>();
  const limit = routeLimit(opts.rateLimit, 'port-forward requests');
  const authenticate = (req: IncomingMessage, body: Record<string, unknown> | null): CallerRole => callerRole(req, body, common.authToken, opts.adminToken);

  const protocolOf = (v: unknown): ForwardProtocol => {
    if (v !== 'tcp' && v !== 'udp') throw new HttpError(400, '"protocol" must be "tcp" or "udp"');
    return v;
  };

  const portOf = (v: unknown, field: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new HttpError(400, `"${field}" must be a whole number from 1 to 65535`);
    return v;
  };

  const peerOf = (key: string): PeerRecord => {
    const peer = registry.get(key);
    if (!peer) throw new HttpError(404, `no peer is registered with the key ${key}; register first (POST /v1/register)`);
    return peer;
  };

  /** For a non-admin caller: the proof for the key as the request names it. */
  const prove = (req: IncomingMessage, keyText: string, raw: Buffer) => proveKey(proof, req, keyText, raw);

  const describe = (f: ForwardRecord, peer: PeerRecord): ForwardResponse => ({
    protocol: f.protocol,
    public_port: f.publicPort,
    target_port: f.targetPort,
    client_public_key: f.peerPublicKey,
    client_address: peer.address4,
    client_address6: peer.address6,
    listen_address: manager.listenAddress,
    active: manager.isOpen(f.protocol, f.publicPort),
    created_at: f.createdAt.toISOString(),
  });

  const target = (f: { protocol: ForwardProtocol; publicPort: number; targetPort: number }, peer: PeerRecord) => ({ ...f, address4: peer.address4, address6: peer.address6 });

  const open = async (t: Parameters<ForwardManager['open']>[0]): Promise<void> => {
    try {
      await manager.open(t);
    } catch (err) {
      if (err instanceof ForwardBindError) throw new HttpError(503, err.message);
      throw err;
    }
  };

  const create: Handler = async (req, res) => {
    limit(req);
    const { value: body, raw } = await readJsonBody(req, common.bodyLimit);
    const role = authenticate(req, body);
    const key = clientKey(body.client_public_key, true)!;
    const protocol = protocolOf(body.protocol);
    const publicPort = portOf(body.public_port, 'public_port');
    const targetPort = portOf(body.target_port, 'target_port');
    // 403, not 409: no forward holds the port; the server's configuration forbids it.
    const range = manager.ports;
    if (range && !inPortRange(range, publicPort)) throw new HttpError(403, `public_port ${publicPort} is outside the ports this server forwards (${formatPortRange(range)}); pick one in that range`);
    if (role === 'client') prove(req, body.client_public_key as string, raw);
    const peer = peerOf(key);
    const slot = `${protocol}/${publicPort}`;
    if (pending.has(slot)) throw new HttpError(409, `${protocol} port ${publicPort} is being set up by another request`);

    const existing = registry.forwards.get(protocol, publicPort);
    if (existing) {
      if (existing.peerPublicKey !== key) throw new HttpError(409, `${protocol} port ${publicPort} is already forwarded to another peer`);
      if (existing.targetPort !== targetPort) {
        throw new HttpError(409, `${protocol} port ${publicPort} is already forwarded to this peer's port ${existing.targetPort}; remove it first (DELETE /v1/portforward)`);
      }
      // The same forward again (a client retrying, or restarting after a crash): answered as it is,
      // and listened on again if it was not active.
      if (!manager.isOpen(protocol, publicPort)) {
        pending.add(slot);
        try {
          await open(target(existing, peer));
        } finally {
          pending.delete(slot);
        }
      }
      sendJson(res, 200, describe(existing, peer));
      return;
    }
    if (registry.forwards.count(key) >= maxPerPeer) throw new HttpError(409, `this peer already has ${maxPerPeer} forwards, the most allowed; remove one first`);

    pending.add(slot);
    try {
      // Listen first: a port that cannot be bound is never recorded, never answered 201.
      await open(target({ protocol, publicPort, targetPort }, peer));
      let record: ForwardRecord;
      try {
        record = registry.forwards.add({ protocol, publicPort, targetPort, peerPublicKey: key });
      } catch (err) {
        await manager.close(protocol, publicPort);
        if (err instanceof ForwardConflictError) throw new HttpError(err.existing ? 409 : 404, err.message);
        throw err;
      }
      log.info(`forward ${protocol} ${manager.listenAddress} port ${publicPort} -> ${peer.address4} port ${targetPort} (peer ${key.slice(0, 8)}…)`);
      sendJson(res, 201, describe(record, peer));
    } finally {
      pending.delete(slot);
    }
  };

  const remove: Handler = async (req, res) => {
    limit(req);
    const { value: body, raw } = await readJsonBody(req, common.bodyLimit);
    const role = authenticate(req, body);
    const key = clientKey(body.client_public_key, role === 'client');
    const protocol = protocolOf(body.protocol);
    const publicPort = portOf(body.public_port, 'public_port');
    if (role === 'client') {
      prove(req, body.client_public_key as string, raw);
      peerOf(key!);
    }
    const f = registry.forwards.get(protocol, publicPort);
    if (!f || (role === 'admin' && key !== undefined && f.peerPublicKey !== key)) {
      throw new HttpError(404, `no ${protocol} forward on port ${publicPort}${key && role === 'admin' ? ' for that key' : ''}`);
    }
    if (role === 'client' && f.peerPublicKey !== key) throw new HttpError(403, `${protocol} port ${publicPort} is forwarded to another peer, not to this key`);
    const peer = registry.get(f.peerPublicKey)!;
    const answer = describe(f, peer);
    await manager.close(protocol, publicPort);
    registry.forwards.remove(protocol, publicPort);
    log.info(`forward ${protocol} port ${publicPort} removed (peer ${f.peerPublicKey.slice(0, 8)}…)`);
    sendJson(res, 200, { ...answer, active: false });
  };

  const list: Handler = async (req, res) => {
    limit(req);
    const role = authenticate(req, null);
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    const keyText = url.searchParams.get('client_public_key') ?? undefined;
    const key = clientKey(keyText, role === 'client');
    if (role === 'client') {
      prove(req, keyText!, Buffer.alloc(0));
      peerOf(key!);
    }
    const peers = new Map(registry.list().map((p) => [p.publicKey, p]));
    const forwards = registry.forwards.list(key).map((f) => describe(f, peers.get(f.peerPublicKey)!));
    sendJson(res, 200, { forwards });
  };

  return { GET: list, POST: create, DELETE: remove };
}
