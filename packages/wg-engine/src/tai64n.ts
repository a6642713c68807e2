// TAI64N timestamps for handshake initiations (whitepaper 5.4.2). The
// responder keeps the greatest one seen per peer and rejects anything not
// strictly greater, which stops replayed initiations.
import { TIMESTAMP_LEN } from './constants.js';

// TAI64 labels are 2^62 + seconds; TAI is 10 s ahead of UTC's 1970 origin as
// wireguard-go and the kernel both count it.
const TAI64_BASE = (1n << 62n) + 10n;

// Nanoseconds are rounded down to this granularity so a timestamp reveals
// little about the host clock (as wireguard-go's whitenerMask does, ~2^24 ns).
const WHITENER_MASK = 0x1000000 - 1;

export function tai64n(wallMs: number): Buffer {
  const out = Buffer.alloc(TIMESTAMP_LEN);
  const secs = Math.floor(wallMs / 1000);
  const nanos = Math.floor((wallMs - secs * 1000) * 1e6) & ~WHITENER_MASK;
  out.writeBigUInt64BE(TAI64_BASE + BigInt(secs), 0);
  out.writeUInt32BE(nanos >>> 0, 8);
  return out;
}

/** True when a is strictly after b (both 12-byte TAI64N, big-endian, so byte order is time order). */
export function timestampAfter(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) > 0;
}
