// WireGuard keys as users write them: 44-character base64 (wg genkey, wg-quick)
// or 64 hex digits (the UAPI).
import { KEY_LEN } from '../constants.js';

export class KeyFormatError extends Error {
  override name = 'KeyFormatError';
}

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function parseKeyBase64(text: string, what = 'key'): Buffer {
  const t = text.trim();
  if (!BASE64_KEY.test(t)) {
    throw new KeyFormatError(`${what} is not a WireGuard key: expected 44 base64 characters encoding 32 bytes`);
  }
  return Buffer.from(t, 'base64');
}

export function parseKeyHex(text: string, what = 'key'): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new KeyFormatError(`${what} is not a WireGuard key: expected 64 hex digits`);
  }
  return Buffer.from(text, 'hex');
}

export function keyToBase64(key: Uint8Array): string {
  if (key.length !== KEY_LEN) throw new KeyFormatError(`a key has ${KEY_LEN} bytes, not ${key.length}`);
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('base64');
}

export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('hex');
}
