// Transport data messages (whitepaper 5.4.6): the per-packet work. These are
// plain functions over a KeypairTable slot, with no peer or device state, so
// the same code runs on the main thread or in a data-plane worker.
import { AEAD_TAG_LEN, MESSAGE_PADDING_MULTIPLE, MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE } from '../constants.js';
import { sodium } from '../crypto/sodium.js';
import type { KeypairTable } from '../keypair.js';
import { Transport, readU32LE, writeU32LE } from '../messages.js';

// One nonce scratch per thread; the AEAD call copies it before returning.
const nonce = Buffer.alloc(12);

/** Size of the message that carries a plaintext of len bytes: padded to 16, never past the MTU. */
export function paddedLength(len: number, mtu: number): number {
  if (len === 0) return 0;
  const lastUnit = mtu > 0 ? len % mtu : len;
  let padded = Math.ceil(lastUnit / MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE;
  if (mtu > 0 && padded > mtu) padded = mtu;
  return len - lastUnit + padded;
}

/**
 * Encrypts plaintext for the keypair in slot into a new transport message.
 * Returns null when the keypair's counter is exhausted (Reject-After-Messages).
 */
export function encryptTransport(
  table: KeypairTable,
  slot: number,
  remoteIndex: number,
  plaintext: Uint8Array,
  mtu: number,
): Buffer | null {
  const counter = table.nextSendCounter(slot);
  if (counter < 0n) return null;
  const padded = paddedLength(plaintext.length, mtu);
  const out = Buffer.allocUnsafe(MESSAGE_TRANSPORT_HEADER_SIZE + padded + AEAD_TAG_LEN);
  out.set(plaintext, Transport.PAYLOAD);
  sealInPlace(table, slot, remoteIndex, counter, out, 0, plaintext.length, padded);
  return out;
}

/**
 * Seals the plaintext at buf[start + 16, start + 16 + len) in place: the
 * header goes at buf[start, start + 16), padding up to padded bytes and the
 * tag after it. Returns the message length. The caller allocated counter and
 * made room for 16 + padded + 16 bytes.
 */
export function sealInPlace(
  table: KeypairTable,
  slot: number,
  remoteIndex: number,
  counter: bigint,
  buf: Uint8Array,
  start: number,
  len: number,
  padded: number,
): number {
  writeU32LE(buf, start, MESSAGE_TRANSPORT);
  writeU32LE(buf, start + Transport.RECEIVER, remoteIndex);
  const lo = Number(counter & 0xffffffffn);
  const hi = Number(counter >> 32n);
  writeU32LE(buf, start + Transport.COUNTER, lo);
  writeU32LE(buf, start + Transport.COUNTER + 4, hi);
  const body = start + Transport.PAYLOAD;
  buf.fill(0, body + len, body + padded);
  nonce.fill(0, 0, 4);
  writeU32LE(nonce, 4, lo);
  writeU32LE(nonce, 8, hi);
  const sealed = buf.subarray(body, body + padded + AEAD_TAG_LEN);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, sealed.subarray(0, padded), undefined, nonce, table.sendKey(slot));
  return Transport.PAYLOAD + padded + AEAD_TAG_LEN;
}

export const DECRYPT_FAILED = -1;
export const DECRYPT_REPLAY = -2;

/**
 * Authenticates and decrypts msg in place. Returns the plaintext length (the
 * plaintext then sits at msg[16, 16 + length)), DECRYPT_FAILED or DECRYPT_REPLAY.
 * The replay window is updated only after the tag verifies, so forged
 * counters cannot move it.
 */
export function decryptTransport(table: KeypairTable, slot: number, msg: Uint8Array): number {
  return openInPlace(table, slot, msg, 0, msg.length);
}

/** decryptTransport over the message at buf[start, start + len). */
export function openInPlace(table: KeypairTable, slot: number, buf: Uint8Array, start: number, len: number): number {
  const lo = readU32LE(buf, start + Transport.COUNTER);
  const hi = readU32LE(buf, start + Transport.COUNTER + 4);
  nonce.fill(0, 0, 4);
  writeU32LE(nonce, 4, lo);
  writeU32LE(nonce, 8, hi);
  const body = buf.subarray(start + Transport.PAYLOAD, start + len);
  const plainLen = body.length - AEAD_TAG_LEN;
  const n = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(body.subarray(0, plainLen), body, undefined, nonce, table.receiveKey(slot));
  if (n < 0) return DECRYPT_FAILED;
  if (!table.replay(slot).check((BigInt(hi) << 32n) | BigInt(lo))) return DECRYPT_REPLAY;
  return plainLen;
}
