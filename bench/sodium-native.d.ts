// The public sodium-native calls this benchmark uses (the package ships no types,
// and @types/sodium-native lacks the IETF AEAD functions).
declare module 'sodium-native' {
  type Bytes = Uint8Array;
  const sodium: {
    crypto_aead_chacha20poly1305_ietf_encrypt(c: Bytes, m: Bytes, ad: Bytes | null, nsec: null, npub: Bytes, k: Bytes): number;
    crypto_aead_chacha20poly1305_ietf_decrypt(m: Bytes, nsec: null, c: Bytes, ad: Bytes | null, npub: Bytes, k: Bytes): number;
  };
  export default sodium;
}
