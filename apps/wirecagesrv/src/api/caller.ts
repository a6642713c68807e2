// Who is asking, for the routes that act on one peer (port forwards, peer
// removal): the admin token acts on anything without a proof; the shared
// registration token is not enough on its own, so such a caller must also
// prove it holds the private key of the client_public_key it names (the
// Wirecage-Proof header, proof.ts) and then acts on that key only.
import type { IncomingMessage } from 'node:http';
import { keyToBase64, parseKeyBase64, RateLimiter } from '@wirecage/wg-engine';
import { presentedToken, tokenMatches } from './auth.js';
import { clientAddress } from './client-address.js';
import { HttpError } from './errors.js';
import { PROOF_HEADER, type ProofVerifier } from './proof.js';

export type CallerRole = 'admin' | 'client';

/** 'admin' (the admin token), or 'client' (the registration token: a proof is still needed); 401 otherwise. */
export function callerRole(
  req: IncomingMessage,
  body: Record<string, unknown> | null,
  authToken: string,
  adminToken: string | undefined,
): CallerRole {
  const token = presentedToken(req, body);
  if (adminToken !== undefined && tokenMatches(token, adminToken)) return 'admin';
  if (tokenMatches(token, authToken)) return 'client';
  throw new HttpError(401, 'invalid token', { 'www-authenticate': 'Bearer error="invalid_token"' });
}

/** True only for the admin token (never for the registration token). */
export function isAdmin(req: IncomingMessage, adminToken: string | undefined): boolean {
  return adminToken !== undefined && tokenMatches(presentedToken(req, null), adminToken);
}

/** The request's client_public_key in canonical base64; undefined when absent and not required; 400 when malformed. */
export function clientKey(value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, '"client_public_key" (a base64 WireGuard public key) is required');
  try {
    return keyToBase64(parseKeyBase64(value, '"client_public_key"'));
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

/** Checks a client's proof for the key as the request names it (`keyText`), over this method, route and body. */
export async function proveKey(proof: ProofVerifier, req: IncomingMessage, keyText: string, raw: Buffer): Promise<void> {
  const header = req.headers[PROOF_HEADER];
  await proof.verify(Array.isArray(header) ? header[0] : header, {
    method: req.method ?? '',
    path: new URL(req.url ?? '/', 'http://api.invalid').pathname,
    clientPublicKey: keyText,
    body: raw,
  });
}

/** Requests per client address (IPv4, or IPv6 /64): a burst, regained per minute, and how many sources are tracked. */
export type RateLimitOptions = NonNullable<ConstructorParameters<typeof RateLimiter>[0]>;

/**
 * A per-client limit for a route (default a burst of 60, 60 a minute; a
 * limiter may be shared): the returned check throws 429 with the seconds to
 * wait (400 as clientAddress).
 */
export function routeLimit(
  rateLimit: RateLimitOptions | RateLimiter | undefined,
  what: string,
  defaults: RateLimitOptions = { burst: 60, perMinute: 60 },
): (req: IncomingMessage) => void {
  // Clients reach the API over TCP, so sources are not spoofed: a full table
  // forgets its oldest source rather than lock a new client out.
  const limiter =
    rateLimit instanceof RateLimiter
      ? rateLimit
      : new RateLimiter({ maxSources: 65536, whenFull: 'forget-oldest', ...defaults, ...rateLimit });
  return (req) => {
    const ms = limiter.take(clientAddress(req));
    if (ms === 0) return;
    const wait = Math.ceil(ms / 1000);
    throw new HttpError(429, `too many ${what} from this address; retry in ${wait} s`, { 'retry-after': String(wait) });
  };
}
