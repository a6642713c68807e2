// The shared registration token, from `Authorization: Bearer <token>` or, as
// the original server took it, from the body's "token" field. Comparison
// hashes both sides first so that it takes the same time whatever the
// length or content of the guess.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The presented token: the Authorization header wins over the body field. */
export function presentedToken(req: IncomingMessage, body: Record<string, unknown> | null): string {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) throw new HttpError(401, 'the Authorization header must be "Bearer <token>"', { 'www-authenticate': 'Bearer' });
    return m[1]!;
  }
  const t = body?.token;
  if (t === undefined)
    throw new HttpError(401, 'a token is required (Authorization: Bearer <token>, or "token" in the body)', {
      'www-authenticate': 'Bearer',
    });
  if (typeof t !== 'string') throw new HttpError(400, '"token" must be a string');
  return t;
}

export function authorize(req: IncomingMessage, body: Record<string, unknown> | null, expected: string): void {
  if (!tokenMatches(presentedToken(req, body), expected)) {
    throw new HttpError(401, 'invalid token', { 'www-authenticate': 'Bearer error="invalid_token"' });
  }
}
