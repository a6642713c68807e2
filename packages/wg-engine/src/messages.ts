// Wire layout of the four WireGuard messages (whitepaper 5.4). The first four
// bytes are a little-endian u32 type: the three "reserved" bytes must be zero,
// so reading the whole word rejects garbage in them as kernel and wireguard-go do
// (data/packet-rules.ts datagramKind, the one message-type switch).
export const Initiation = {
  SENDER: 4,
  EPHEMERAL: 8,
  STATIC: 40, // 32 + 16 tag
  TIMESTAMP: 88, // 12 + 16 tag
  MAC1: 116,
  MAC2: 132,
} as const;

export const Response = {
  SENDER: 4,
  RECEIVER: 8,
  EPHEMERAL: 12,
  EMPTY: 44, // 0 + 16 tag
  MAC1: 60,
  MAC2: 76,
} as const;

export const CookieReply = {
  RECEIVER: 4,
  NONCE: 8,
  COOKIE: 32, // 16 + 16 tag
} as const;

export const Transport = {
  RECEIVER: 4,
  COUNTER: 8,
  PAYLOAD: 16,
} as const;

export type MessageKind = 'initiation' | 'response' | 'cookie' | 'transport';

export function readU32LE(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function writeU32LE(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

export function newMessage(type: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = type;
  return b;
}
