// Proof that a request comes from the holder of a client's private key,
// without signatures: the Wirecage-Proof header, an HMAC of the request under
// a key only the client and the server can derive (the X25519 Diffie-Hellman
// of their static keys). The scheme and its wire format are defined once, in
// @wirecage/wg-engine (crypto/key-proof.ts), shared with wirecage's signer.
//
// Registering someone else's public key gives nothing (the public key is not
// a secret, the private key is); the MAC binds the method, the route, the
// key and every byte of the body; TIME must be within MAX_SKEW_S of the
// server's clock, and a proof is accepted once (a cache of the nonces seen
// within the window, kept in the registry by the server so that a restart
// does not forget them), so a captured request cannot be replayed.
import { timingSafeEqual } from 'node:crypto';
import { KEY_PROOF_HEADER, KEY_PROOF_MAX_SKEW_S, keyProofKey, keyProofMac, parseKeyProof } from '@wirecage/wg-engine';
import { MemoryNonceCache, type NonceCache } from '../registry/index.js';
import { HttpError } from './errors.js';

/** Lower case, as node:http names request headers. */
export const PROOF_HEADER = KEY_PROOF_HEADER.toLowerCase();
export const MAX_SKEW_S = KEY_PROOF_MAX_SKEW_S;

export interface ProofInput {
  method: string;
  /** The route's path (not the full URL). */
  path: string;
  /** Base64, as in the request. */
  clientPublicKey: string;
  body: Buffer;
}

export interface ProofVerifierOptions {
  serverPrivateKey: Buffer;
  serverPublicKey: Buffer;
  now?: () => number;
  /** Nonces remembered at most; beyond, proofs are refused (503) until old ones expire. Default 100,000. */
  maxNonces?: number;
  /** Where seen nonces are kept: the registry's (`registry.nonces`, surviving restarts); default in memory. */
  nonces?: NonceCache;
}

export class ProofVerifier {
  private readonly priv: Buffer;
  private readonly serverPublic: Buffer;
  private readonly now: () => number;
  private readonly maxNonces: number;
  private readonly nonces: NonceCache;

  constructor(opts: ProofVerifierOptions) {
    if (opts.serverPrivateKey.length !== 32 || opts.serverPublicKey.length !== 32) {
      throw new Error("the proof verifier needs the server's 32-byte private and public keys");
    }
    // A copy of our own (not from the shared Buffer pool), so the caller may wipe its buffer.
    this.priv = Buffer.alloc(32);
    opts.serverPrivateKey.copy(this.priv);
    this.serverPublic = Buffer.from(opts.serverPublicKey);
    this.now = opts.now ?? Date.now;
    this.maxNonces = opts.maxNonces ?? 100_000;
    this.nonces = opts.nonces ?? new MemoryNonceCache();
  }

  /**
   * Checks the proof header for `clientPublicKey` (base64, already validated).
   * HttpError 401 when it is missing, malformed, stale or replayed; 403 when
   * it does not come from that key's owner.
   */
  async verify(header: string | undefined, p: ProofInput): Promise<void> {
    if (header === undefined) {
      throw new HttpError(
        401,
        `this route needs proof of the client key: a ${PROOF_HEADER} header (wirecage sends it), or the admin token`,
      );
    }
    const proof = parseKeyProof(header);
    if (!proof)
      throw new HttpError(
        401,
        `the ${PROOF_HEADER} header must be TIME.NONCE.MAC (unix seconds, 16-byte nonce and 32-byte MAC in base64url)`,
      );
    const nowMs = this.now();
    const skew = proof.time - Math.floor(nowMs / 1000);
    if (Math.abs(skew) > MAX_SKEW_S) {
      throw new HttpError(
        401,
        `the proof's time is ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} the server's clock (at most ${MAX_SKEW_S} s allowed); check the client's clock`,
      );
    }
    const clientPublic = Buffer.from(p.clientPublicKey, 'base64');
    const key = keyProofKey(this.priv, clientPublic, clientPublic, this.serverPublic);
    const expected =
      key &&
      keyProofMac(key, {
        method: p.method,
        route: p.path,
        clientPublicKey: p.clientPublicKey,
        time: proof.time,
        nonce: proof.nonce,
        body: p.body,
      });
    key?.fill(0);
    if (!expected || !timingSafeEqual(expected, proof.mac)) {
      throw new HttpError(
        403,
        'the proof does not come from the owner of client_public_key: only that peer (or the admin token) can manage its forwards',
      );
    }
    // Kept for the whole window a TIME can be accepted in: until now + 2 x the skew.
    const claim = await this.nonces.claim(proof.nonce, nowMs + 2 * MAX_SKEW_S * 1000, nowMs, this.maxNonces);
    if (claim === 'replayed') throw new HttpError(401, 'this proof was already used; send a fresh one with every request');
    if (claim === 'full') throw new HttpError(503, 'too many requests to check for replays; retry in a minute', { 'retry-after': '60' });
  }
}
