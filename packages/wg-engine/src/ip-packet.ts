// The few facts the engine reads from inner IP packets: the version, where
// the source and destination addresses sit, and the real length (a decrypted
// payload carries padding after it).

export const IPV4_HEADER_MIN = 20;
export const IPV6_HEADER_LEN = 40;

/** IP version of a packet (4 or 6), or 0 when it is too short to be either. */
export function ipVersion(p: Uint8Array): 0 | 4 | 6 {
  if (p.length === 0) return 0;
  const v = p[0]! >> 4;
  if (v === 4 && p.length >= IPV4_HEADER_MIN) return 4;
  if (v === 6 && p.length >= IPV6_HEADER_LEN) return 6;
  return 0;
}

/** Length the IP header declares for the whole packet; 0 when malformed or longer than available. */
export function ipPacketLength(p: Uint8Array, available: number): number {
  const v = ipVersion(p);
  let len: number;
  if (v === 4) {
    if ((p[0]! & 0x0f) < 5) return 0;
    len = (p[2]! << 8) | p[3]!;
    if (len < IPV4_HEADER_MIN) return 0;
  } else if (v === 6) {
    len = IPV6_HEADER_LEN + ((p[4]! << 8) | p[5]!);
  } else {
    return 0;
  }
  return len <= available ? len : 0;
}

export const SRC_OFFSET = { 4: 12, 6: 8 } as const;
export const DST_OFFSET = { 4: 16, 6: 24 } as const;
