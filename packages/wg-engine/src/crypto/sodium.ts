// Typed access to sodium-native's raw binding. The package's index.js wraps
// each call in asserts and turns a failed tag check into a thrown Error; on the
// packet path both cost more than the AEAD itself, so the engine calls the
// binding directly and checks lengths itself. Return values: byte count, or -1.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type Bytes = Uint8Array;

export interface SodiumBinding {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Bytes, m: Bytes, ad: Bytes | undefined, npub: Bytes, k: Bytes): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Bytes, c: Bytes, ad: Bytes | undefined, npub: Bytes, k: Bytes): number;
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Bytes, m: Bytes, ad: Bytes | undefined, npub: Bytes, k: Bytes): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(m: Bytes, c: Bytes, ad: Bytes | undefined, npub: Bytes, k: Bytes): number;
  crypto_scalarmult(q: Bytes, n: Bytes, p: Bytes): number;
  crypto_scalarmult_base(q: Bytes, n: Bytes): number;
  // Unlike the other calls, the binding takes the backing buffer and a byte range.
  randombytes_buf(buf: ArrayBufferLike, byteOffset: number, byteLength: number): void;
  randombytes_uniform(upper: number): number;
  randombytes_random(): number;
  sodium_memzero(buf: Bytes): void;
}

export const sodium = require('sodium-native/binding.js') as SodiumBinding;
