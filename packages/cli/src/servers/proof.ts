// The Wirecage-Proof header that wirecagesrv asks for on /v1/portforward: an
// HMAC of the request under a key both sides derive from the X25519
// Diffie-Hellman of the client's and the server's static keys, so it proves
// the client holds its private key without sending anything secret. The
// server's side (apps/wirecagesrv/src/api/proof.ts) documents the scheme;
// the two must agree byte for byte (a test checks one against the other).
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, randomBytes } from 'node:crypto';
import { publicKeyOf } from '@wirecage/wg-engine';
import { RunError } from '../cage/from-config.js';

export const PROOF_HEADER = 'Wirecage-Proof';
const LABEL = Buffer.from('wirecage key proof v1');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

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
  { now = Date.now, nonce = () => randomBytes(16) }: { now?: () => number; nonce?: () => Buffer } = {},
): (r: ProofRequest) => string {
  const clientPublic = publicKeyOf(clientPrivate);
  const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: clientPrivate.toString('base64url'), x: clientPublic.toString('base64url') }, format: 'jwk' });
  const pub = createPublicKey({ key: Buffer.concat([SPKI_X25519, serverPublic]), format: 'der', type: 'spki' });
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: priv, publicKey: pub });
  } catch {
    return () => {
      throw new RunError('the server\'s public key is a low-order point: no key can be proven to it');
    };
  }
  const key = createHash('sha256').update(LABEL).update(shared).update(clientPublic).update(serverPublic).digest();
  shared.fill(0);
  return (r) => {
    const time = Math.floor(now() / 1000);
    const n = nonce().toString('base64url');
    const bodyHash = createHash('sha256').update(r.body).digest('hex');
    const mac = createHmac('sha256', key).update([r.method.toUpperCase(), r.route, r.clientPublicKey, String(time), n, bodyHash].join('\n')).digest('base64url');
    return `${time}.${n}.${mac}`;
  };
}
