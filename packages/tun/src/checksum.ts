// The Internet checksum (RFC 1071) and the IP pseudo-header it covers for TCP and UDP.

/** Ones'-complement sum of b[off, off + len) added to init, folded to 16 bits (not complemented). */
export function sum16(b: Uint8Array, off: number, len: number, init: number): number {
  let s = init;
  const end = off + (len & ~1);
  let i = off;
  // Four bytes a round: the sum stays far below 2^53 for any 64 KiB packet.
  for (; i + 3 < end; i += 4) s += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!);
  for (; i < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (len & 1) s += b[end]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** The folded sum of the pseudo-header of the IP packet at b[ip] for an upper layer of l4Len bytes. */
export function pseudoHeaderSum(b: Uint8Array, ip: number, version: number, proto: number, l4Len: number): number {
  if (version === 4) return sum16(b, ip + 12, 8, proto + l4Len);
  return sum16(b, ip + 8, 32, proto + l4Len);
}
