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
  writeU32LE(out, 0, MESSAGE_TRANSPORT);
  writeU32LE(out, Transport.RECEIVER, remoteIndex);
  out.writeBigUInt64LE(counter, Transport.COUNTER);
  out.set(plaintext, Transport.PAYLOAD);
  out.fill(0, Transport.PAYLOAD + plaintext.length, Transport.PAYLOAD + padded);
  nonce.fill(0, 0, 4);
  nonce.writeBigUInt64LE(counter, 4);
  const body = out.subarray(Transport.PAYLOAD);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(body, body.subarray(0, padded), undefined, nonce, table.sendKey(slot));
  return out;
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
  const counter = readCounter(msg);
  nonce.fill(0, 0, 4);
  nonce.set(msg.subarray(Transport.COUNTER, Transport.PAYLOAD), 4);
  const body = msg.subarray(Transport.PAYLOAD);
  const plainLen = body.length - AEAD_TAG_LEN;
  const n = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
    body.subarray(0, plainLen),
    body,
    undefined,
    nonce,
    table.receiveKey(slot),
  );
  if (n < 0) return DECRYPT_FAILED;
  if (!table.replay(slot).check(counter)) return DECRYPT_REPLAY;
  return plainLen;
}

export function receiverIndex(msg: Uint8Array): number {
  return readU32LE(msg, Transport.RECEIVER);
}

function readCounter(msg: Uint8Array): bigint {
  const lo = readU32LE(msg, Transport.COUNTER);
  const hi = readU32LE(msg, Transport.COUNTER + 4);
  return (BigInt(hi) << 32n) | BigInt(lo);
}
