// Proof that a request comes from the holder of a client's private key,
// without signatures: the client and the server share a secret only they can
// compute, the X25519 Diffie-Hellman of their static keys (as the WireGuard
// handshake's static-static term). The client MACs each request with a key
// derived from it:
//
//   shared = X25519(client private, server public) = X25519(server private, client public)
//   key    = SHA-256("wirecage key proof v1" || shared || client public || server public)
//   mac    = HMAC-SHA256(key, METHOD \n PATH \n CLIENT_PUBLIC_KEY \n TIME \n NONCE \n hex(SHA-256(body)))
//   header   Wirecage-Proof: TIME.NONCE.MAC   (unix seconds, 16-byte nonce and MAC in base64url)
//
// Registering someone else's public key gives nothing (the public key is not
// a secret, the private key is); the MAC binds the method, the route, the
// key and every byte of the body; TIME must be within MAX_SKEW_S of the
// server's clock, and a proof is accepted once (a cache of the nonces seen
// within the window), so a captured request cannot be replayed.
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, timingSafeEqual, type KeyObject } from 'node:crypto';
import { HttpError } from './errors.js';

export const PROOF_HEADER = 'wirecage-proof';
export const MAX_SKEW_S = 300;
const LABEL = Buffer.from('wirecage key proof v1');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

export function x25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
}

export function x25519Private(raw: Buffer, publicRaw: Buffer): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: publicRaw.toString('base64url') }, format: 'jwk' });
}

/** The MAC key both sides derive; null when the DH has no result (a low-order public key). */
export function proofKey(ownPrivate: KeyObject, otherPublic: Buffer, clientPublic: Buffer, serverPublic: Buffer): Buffer | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ownPrivate, publicKey: x25519Public(otherPublic) });
  } catch {
    return null;
  }
  const key = createHash('sha256').update(LABEL).update(shared).update(clientPublic).update(serverPublic).digest();
  shared.fill(0);
  return key;
}

export interface ProofInput {
  method: string;
  path: string;
  /** Base64, as in the request. */
  clientPublicKey: string;
  time: number;
  nonce: string;
  body: Buffer;
}

export function proofMac(key: Buffer, p: ProofInput): Buffer {
  const bodyHash = createHash('sha256').update(p.body).digest('hex');
  return createHmac('sha256', key).update([p.method.toUpperCase(), p.path, p.clientPublicKey, String(p.time), p.nonce, bodyHash].join('\n')).digest();
}

const B64URL = /^[A-Za-z0-9_-]+$/;

export function parseProofHeader(value: string): { time: number; nonce: string; mac: Buffer } | null {
  const parts = value.trim().split('.');
  if (parts.length !== 3) return null;
  const [t, nonce, mac] = parts as [string, string, string];
  if (!/^\d{1,12}$/.test(t) || !B64URL.test(nonce) || !B64URL.test(mac)) return null;
  const macBytes = Buffer.from(mac, 'base64url');
  if (macBytes.length !== 32 || Buffer.from(nonce, 'base64url').length !== 16) return null;
  return { time: Number(t), nonce, mac: macBytes };
}

export interface ProofVerifierOptions {
  serverPrivateKey: Buffer;
  serverPublicKey: Buffer;
  now?: () => number;
  /** Nonces remembered at most; beyond, proofs are refused (503) until old ones expire. Default 100,000. */
  maxNonces?: number;
}

export class ProofVerifier {
  private readonly priv: KeyObject;
  private readonly serverPublic: Buffer;
  private readonly now: () => number;
  private readonly maxNonces: number;
  /** nonce -> expiry (ms); insertion order is expiry order, so the oldest are at the front. */
  private readonly seen = new Map<string, number>();

  constructor(opts: ProofVerifierOptions) {
    // A copy in a KeyObject, so the caller may wipe its buffer.
    this.priv = x25519Private(opts.serverPrivateKey, opts.serverPublicKey);
    this.serverPublic = Buffer.from(opts.serverPublicKey);
    this.now = opts.now ?? Date.now;
    this.maxNonces = opts.maxNonces ?? 100_000;
  }

  /**
   * Checks the proof header for `clientPublicKey` (base64, already validated).
   * HttpError 401 when it is missing, malformed, stale or replayed; 403 when
   * it does not come from that key's owner.
   */
  verify(header: string | undefined, p: Omit<ProofInput, 'time' | 'nonce'>): void {
    if (header === undefined) {
      throw new HttpError(401, `this route needs proof of the client key: a ${PROOF_HEADER} header (wirecage sends it), or the admin token`);
    }
    const proof = parseProofHeader(header);
    if (!proof) throw new HttpError(401, `the ${PROOF_HEADER} header must be TIME.NONCE.MAC (unix seconds, 16-byte nonce and 32-byte MAC in base64url)`);
    const nowMs = this.now();
    const skew = proof.time - Math.floor(nowMs / 1000);
    if (Math.abs(skew) > MAX_SKEW_S) {
      throw new HttpError(401, `the proof's time is ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} the server's clock (at most ${MAX_SKEW_S} s allowed); check the client's clock`);
    }
    const clientPublic = Buffer.from(p.clientPublicKey, 'base64');
    const key = proofKey(this.priv, clientPublic, clientPublic, this.serverPublic);
    const expected = key && proofMac(key, { ...p, time: proof.time, nonce: proof.nonce });
    key?.fill(0);
    if (!expected || !timingSafeEqual(expected, proof.mac)) {
      throw new HttpError(403, 'the proof does not come from the owner of client_public_key: only that peer (or the admin token) can manage its forwards');
    }
    this.expire(nowMs);
    if (this.seen.has(proof.nonce)) throw new HttpError(401, 'this proof was already used; send a fresh one with every request');
    if (this.seen.size >= this.maxNonces) throw new HttpError(503, 'too many requests to check for replays; retry in a minute', { 'retry-after': '60' });
    this.seen.set(proof.nonce, nowMs + 2 * MAX_SKEW_S * 1000);
  }

  private expire(nowMs: number): void {
    for (const [nonce, until] of this.seen) {
      if (until > nowMs) break;
      this.seen.delete(nonce);
    }
  }
}
