// TCP and UDP packets for the offload tests: super-packets as the kernel hands
// them with TSO/USO, a receiver's checksum verification, and GSO cutting.
import assert from 'node:assert/strict';
import { segmentCount, sum16, writeSegment, type VnetHeader } from '../src/gso.js';

export const SRC4 = [10, 1, 2, 3];
export const DST4 = [10, 9, 8, 7];
export const SRC6 = Buffer.from('fd000000000000000000000000000001', 'hex');
export const DST6 = Buffer.from('fd000000000000000000000000000002', 'hex');

/** A TCP super-packet as the kernel hands it with TSO: one IP header, one TCP header (with options), a long payload. */
export function tcpSuper(version: 4 | 6, payload: Buffer, flags = 0x18 /* PSH ACK */): Buffer {
  const ip = version === 4 ? 20 : 40;
  const tcpLen = 32; // 12 bytes of options, as Linux sends timestamps
  const p = Buffer.alloc(ip + tcpLen + payload.length);
  if (version === 4) {
    p[0] = 0x45;
    p.writeUInt16BE(p.length > 65535 ? 0 : p.length, 2);
    p.writeUInt16BE(0x1234, 4);
    p[8] = 64;
    p[9] = 6;
    Buffer.from(SRC4).copy(p, 12);
    Buffer.from(DST4).copy(p, 16);
  } else {
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = 6;
    p[7] = 64;
    SRC6.copy(p, 8);
    DST6.copy(p, 24);
  }
  const t = ip;
  p.writeUInt16BE(40000, t);
  p.writeUInt16BE(5201, t + 2);
  p.writeUInt32BE(0xfffff000, t + 4); // wraps inside the packet
  p.writeUInt32BE(77, t + 8);
  p[t + 12] = (tcpLen / 4) << 4;
  p[t + 13] = flags;
  p.writeUInt16BE(502, t + 14);
  p.fill(1, t + 20, t + tcpLen); // NOPs
  payload.copy(p, ip + tcpLen);
  return p;
}

export function udpSuper(version: 4 | 6, payload: Buffer): Buffer {
  const ip = version === 4 ? 20 : 40;
  const p = Buffer.alloc(ip + 8 + payload.length);
  if (version === 4) {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p[8] = 64;
    p[9] = 17;
    Buffer.from(SRC4).copy(p, 12);
    Buffer.from(DST4).copy(p, 16);
  } else {
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = 17;
    p[7] = 64;
    SRC6.copy(p, 8);
    DST6.copy(p, 24);
  }
  p.writeUInt16BE(5353, ip);
  p.writeUInt16BE(9999, ip + 2);
  payload.copy(p, ip + 8);
  return p;
}

/** Checks a segment as a receiving stack would: every checksum sums to 0xffff. */
export function verify(seg: Buffer): { version: number; l4: number; proto: number } {
  const version = seg[0]! >> 4;
  let l4: number;
  let pseudo: number;
  let proto: number;
  if (version === 4) {
    assert.equal(seg.readUInt16BE(2), seg.length, 'IPv4 total length');
    assert.equal(sum16(seg, 0, 20, 0), 0xffff, 'IPv4 header checksum');
    l4 = 20;
    proto = seg[9]!;
    pseudo = sum16(seg, 12, 8, proto + seg.length - l4);
  } else {
    assert.equal(seg.readUInt16BE(4), seg.length - 40, 'IPv6 payload length');
    l4 = 40;
    proto = seg[6]!;
    pseudo = sum16(seg, 8, 32, proto + seg.length - l4);
  }
  assert.equal(sum16(seg, l4, seg.length - l4, pseudo), 0xffff, 'transport checksum');
  if (proto === 17) assert.equal(seg.readUInt16BE(l4 + 4), seg.length - l4, 'UDP length');
  return { version, l4, proto };
}

export function split(pkt: Buffer, h: VnetHeader): Buffer[] {
  const n = segmentCount(pkt, 0, pkt.length, h);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const buf = Buffer.alloc(pkt.length + 100);
    const len = writeSegment(pkt, 0, pkt.length, h, i, buf, 7);
    out.push(buf.subarray(7, 7 + len));
  }
  return out;
}
