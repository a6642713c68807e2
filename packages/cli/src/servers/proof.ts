// The Wirecage-Proof header that wirecagesrv asks for on /v1/portforward: an
// HMAC of the request under a key both sides derive from the X25519
// Diffie-Hellman of the client's and the server's static keys, so it proves
// the client holds its private key without sending anything secret. The
// scheme and its wire format live in @wirecage/wg-engine (crypto/key-proof.ts),
// shared with the server's verifier; this is the client's signer.
import { randomBytes } from 'node:crypto';
import { KEY_PROOF_HEADER, KEY_PROOF_NONCE_LEN, keyProofHeader, keyProofKey, publicKeyOf } from '@wirecage/wg-engine';
import { RunError } from '../cage/run-error.js';

export const PROOF_HEADER = KEY_PROOF_HEADER;

export interface ProofRequest {
  method: string;
  /** The route, such as "/v1/portforward" (not the URL: a proxy may add a prefix). */
  route: string;
  /** Base64, exactly as the request carries it. */
  clientPublicKey: string;
  body: string;
}

/** Returns a function giving a fresh header value per request; the private key is not kept. */
export function proofSigner(
  clientPrivate: Buffer,
  serverPublic: Buffer,
  { now = Date.now, nonce = () => randomBytes(KEY_PROOF_NONCE_LEN) }: { now?: () => number; nonce?: () => Buffer } = {},
): (r: ProofRequest) => string {
  const key = keyProofKey(clientPrivate, serverPublic, publicKeyOf(clientPrivate), serverPublic);
  if (!key) {
    return () => {
      throw new RunError("the server's public key is a low-order point: no key can be proven to it");
    };
  }
  return (r) => keyProofHeader(key, { ...r, time: Math.floor(now() / 1000), nonce: nonce().toString('base64url') });
}
