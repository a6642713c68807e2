// The cryptographic primitives of the WireGuard paper, section 5.4:
// HASH, MAC, HMAC, KDF_n, DH, AEAD and XAEAD. Handshake-path code: clarity
// over speed. The transport path uses the raw AEAD calls in data/transport.ts.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { sodium } from './sodium.js';
import { AEAD_TAG_LEN, KEY_LEN } from '../constants.js';

/** BLAKE2s-256 of the concatenation of its arguments. */
export function hash(...parts: Uint8Array[]): Buffer {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Keyed BLAKE2s with a 16-byte output (mac1, mac2, cookie). Node has no keyed BLAKE2s. */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return Buffer.from(blake2s(data, { key, dkLen: 16 }));
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

const ONE = Buffer.from([1]);
const TWO = Buffer.from([2]);
const THREE = Buffer.from([3]);

/** HKDF with BLAKE2s as the paper defines KDF_1..KDF_3: returns n 32-byte keys. */
export function kdf(n: 1, key: Uint8Array, input: Uint8Array): [Buffer];
export function kdf(n: 2, key: Uint8Array, input: Uint8Array): [Buffer, Buffer];
export function kdf(n: 3, key: Uint8Array, input: Uint8Array): [Buffer, Buffer, Buffer];
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Buffer[] {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  if (n === 1) {
    prk.fill(0);
    return [t1];
  }
  const t2 = hmac(prk, t1, TWO);
  if (n === 2) {
    prk.fill(0);
    return [t1, t2];
  }
  const t3 = hmac(prk, t2, THREE);
  prk.fill(0);
  return [t1, t2, t3];
}

/**
 * X25519. Returns null when the result is all zeros, which happens exactly when
 * the peer's point has low order: the handshake must then be rejected.
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Buffer | null {
  const out = Buffer.alloc(KEY_LEN);
  if (privateKey.length !== KEY_LEN || publicKey.length !== KEY_LEN) return null;
  return sodium.crypto_scalarmult(out, privateKey, publicKey) === 0 ? out : null;
}

export function publicKeyOf(privateKey: Uint8Array): Buffer {
  const out = Buffer.alloc(KEY_LEN);
  sodium.crypto_scalarmult_base(out, privateKey);
  return out;
}

/** A fresh Curve25519 private key, clamped as `wg genkey` does. */
export function generatePrivateKey(): Buffer {
  const k = randomBytes(KEY_LEN);
  clampPrivateKey(k);
  return k;
}

export function clampPrivateKey(k: Uint8Array): void {
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
}

export function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  sodium.randombytes_buf(b.buffer, b.byteOffset, b.byteLength);
  return b;
}

/** A uniformly random unsigned 32-bit integer from libsodium's CSPRNG. */
export function randomUint32(): number {
  return sodium.randombytes_random() >>> 0;
}

function counterNonce(counter: bigint | number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(BigInt(counter), 4);
  return nonce;
}

/** ChaCha20-Poly1305 (RFC 8439) with the paper's nonce: 32 zero bits then a little-endian 64-bit counter. */
export function aeadEncrypt(key: Uint8Array, counter: bigint | number, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const out = Buffer.alloc(plaintext.length + AEAD_TAG_LEN);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, ad, counterNonce(counter), key);
  return out;
}

/** Returns null when the tag does not verify. */
export function aeadDecrypt(key: Uint8Array, counter: bigint | number, ciphertext: Uint8Array, ad: Uint8Array): Buffer | null {
  if (ciphertext.length < AEAD_TAG_LEN) return null;
  const out = Buffer.alloc(ciphertext.length - AEAD_TAG_LEN);
  const n = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, ciphertext, ad, counterNonce(counter), key);
  return n < 0 ? null : out;
}

/** XChaCha20-Poly1305 with a 24-byte random nonce: the cookie reply's cipher. */
export function xaeadEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const out = Buffer.alloc(plaintext.length + AEAD_TAG_LEN);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, nonce, key);
  return out;
}

export function xaeadDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Buffer | null {
  if (ciphertext.length < AEAD_TAG_LEN) return null;
  const out = Buffer.alloc(ciphertext.length - AEAD_TAG_LEN);
  const n = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, ciphertext, ad, nonce, key);
  return n < 0 ? null : out;
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function isZero(a: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]!;
  return acc === 0;
}

export function wipe(...bufs: (Uint8Array | null | undefined)[]): void {
  for (const b of bufs) if (b) sodium.sodium_memzero(b);
}
