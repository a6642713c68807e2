// POST /v1/register: a client names its public key and gets its tunnel settings
// (addresses from the pool, the server's key and endpoint). Registering again
// answers the same addresses and renews the lease.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generatePrivateKey, keyProofKey, keyToBase64, parseKeyBase64, type Logger } from '@wirecage/wg-engine';
import { RegistryFullError, type PeerRecord } from '../registry/index.js';
import { authorize } from './auth.js';
import { readJsonObject } from './body.js';
import { HttpError } from './errors.js';
import { sendJson } from './json.js';
import type { ApiOptions } from './routes.js';

export interface RegisterResponse {
  client_address: string;
  client_address6: string;
  server_public_key: string;
  server_endpoint: string;
  /** Every host:port the client may send WireGuard to (a fleet's nodes), server_endpoint first: where it fails over to. */
  server_endpoints: string[];
  dns: string[];
  mtu: number;
  allowed_ips: string[];
  persistent_keepalive: number;
  /** When the registration lapses unless renewed (RFC 3339, UTC): registering again or a handshake renews it. */
  lease_expires: string;
}

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

/** The key the request names, in canonical base64; 400 for a malformed key, the server's own, or one no handshake can use. */
function registrableKey(keyText: unknown, serverPublicKey: string): string {
  if (typeof keyText !== 'string') throw new HttpError(400, '"client_public_key" (a base64 WireGuard public key) is required');
  let key: Buffer;
  try {
    key = parseKeyBase64(keyText, '"client_public_key"');
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
  const publicKey = keyToBase64(key);
  if (publicKey === serverPublicKey) throw new HttpError(400, '"client_public_key" is the server\'s own public key');
  if (smallOrder(key))
    throw new HttpError(
      400,
      '"client_public_key" is a point of small order, with which no WireGuard handshake can complete; generate the key with `wg genkey`',
    );
  return publicKey;
}

export function registerHandler(opts: ApiOptions, limit: (req: IncomingMessage) => void, bodyLimit: number, log: Logger) {
  const pool = opts.registry.pool;
  const prefix4 = pool.subnet4.cidr.prefix;
  const prefix6 = pool.subnet6.cidr.prefix;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    limit(req);
    const body = await readJsonObject(req, bodyLimit);
    authorize(req, body, opts.authToken);
    const publicKey = registrableKey(body.client_public_key, opts.serverPublicKey);
    let result: { peer: PeerRecord; created: boolean };
    try {
      result = await opts.registry.register(publicKey);
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
      server_endpoints: opts.serverEndpoints ?? [opts.serverEndpoint],
      dns: opts.dns,
      mtu: opts.mtu,
      allowed_ips: opts.allowedIps ?? ['0.0.0.0/0', '::/0'],
      persistent_keepalive: opts.persistentKeepalive ?? 25,
      lease_expires: result.peer.leaseExpires.toISOString(),
    };
    sendJson(res, 200, answer);
  };
}
