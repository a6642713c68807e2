// The Wirecage-Proof header: proof that an HTTP request comes from the holder
// of a WireGuard private key, without signatures. The client and the server
// share a secret only they can compute, the X25519 Diffie-Hellman of their
// static keys (the WireGuard handshake's static-static term), and the client
// MACs each request with a key derived from it:
//
//   shared = X25519(client private, server public) = X25519(server private, client public)
//   key    = SHA-256("wirecage key proof v1" || shared || client public || server public)
//   mac    = HMAC-SHA256(key, METHOD \n ROUTE \n CLIENT_PUBLIC_KEY \n TIME \n NONCE \n hex(SHA-256(body)))
//   header   Wirecage-Proof: TIME.NONCE.MAC   (unix seconds, 16-byte nonce and MAC in base64url)
//
// Both the client's signer (wirecage) and the server's verifier (wirecagesrv)
// build on this file, so the wire format has one definition. Replay defence
// (TIME within KEY_PROOF_MAX_SKEW_S, each nonce accepted once) is the
// verifier's job: it needs state this file does not keep.
import { createHash, createHmac } from 'node:crypto';
import { dh, wipe } from './primitives.js';

export const KEY_PROOF_HEADER = 'Wirecage-Proof';
export const KEY_PROOF_LABEL = 'wirecage key proof v1';
/** How far TIME may be from the verifier's clock, in seconds. */
export const KEY_PROOF_MAX_SKEW_S = 300;
export const KEY_PROOF_NONCE_LEN = 16;
export const KEY_PROOF_MAC_LEN = 32;

const LABEL = Buffer.from(KEY_PROOF_LABEL);

/**
 * The MAC key, from either side: the client passes its private key and the
 * server's public key, the server its private key and the client's public key.
 * Null when there is no shared secret (a low-order public key, or a key that
 * is not 32 bytes). The caller owns the result and should wipe it when done.
 */
export function keyProofKey(
  ownPrivate: Uint8Array,
  otherPublic: Uint8Array,
  clientPublic: Uint8Array,
  serverPublic: Uint8Array,
): Buffer | null {
  const shared = dh(ownPrivate, otherPublic);
  if (!shared) return null;
  const key = createHash('sha256').update(LABEL).update(shared).update(clientPublic).update(serverPublic).digest();
  wipe(shared);
  return key;
}

export interface KeyProofFields {
  method: string;
  /** The route, such as "/v1/portforward" (not the URL: a proxy may add a prefix). */
  route: string;
  /** Base64, exactly as the request carries it. */
  clientPublicKey: string;
  /** Unix seconds. */
  time: number;
  /** Base64url, as in the header. */
  nonce: string;
  /** The body's exact bytes (a string is taken as UTF-8). */
  body: string | Uint8Array;
}

export function keyProofMac(key: Uint8Array, f: KeyProofFields): Buffer {
  const bodyHash = createHash('sha256').update(f.body).digest('hex');
  return createHmac('sha256', key)
    .update([f.method.toUpperCase(), f.route, f.clientPublicKey, String(f.time), f.nonce, bodyHash].join('\n'))
    .digest();
}

export function formatKeyProof(time: number, nonce: string, mac: Uint8Array): string {
  return `${time}.${nonce}.${Buffer.from(mac.buffer, mac.byteOffset, mac.byteLength).toString('base64url')}`;
}

/** The header value for a request: what a client sends. */
export function keyProofHeader(key: Uint8Array, f: KeyProofFields): string {
  return formatKeyProof(f.time, f.nonce, keyProofMac(key, f));
}

export interface ParsedKeyProof {
  time: number;
  nonce: string;
  mac: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/** Null unless the value is TIME.NONCE.MAC with a 16-byte nonce and a 32-byte MAC. */
export function parseKeyProof(value: string): ParsedKeyProof | null {
  const parts = value.trim().split('.');
  if (parts.length !== 3) return null;
  const [t, nonce, mac] = parts as [string, string, string];
  if (!/^\d{1,12}$/.test(t) || !B64URL.test(nonce) || !B64URL.test(mac)) return null;
  const macBytes = Buffer.from(mac, 'base64url');
  if (macBytes.length !== KEY_PROOF_MAC_LEN || Buffer.from(nonce, 'base64url').length !== KEY_PROOF_NONCE_LEN) return null;
  return { time: Number(t), nonce, mac: macBytes };
}
