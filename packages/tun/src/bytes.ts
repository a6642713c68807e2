// Network-order (and virtio's little-endian) field access on plain byte arrays,
// for the packet code that must not allocate (gso.ts, gro.ts).

export function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

export function put16le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
}

export function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function u32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** True when a[ao, ao + len) and b[bo, bo + len) hold the same bytes. */
export function bytesEqual(a: Uint8Array, ao: number, b: Uint8Array, bo: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}
