// TUN offloads, the protocol half (the native half only moves bytes): with
// IFF_VNET_HDR every packet read from or written to the TUN carries a 10-byte
// struct virtio_net_hdr. With TSO/USO on, the kernel hands us "super-packets"
// of up to 64 KiB that must be cut into MSS-sized segments, each with its own
// IP and TCP/UDP headers and checksums, before they can be encrypted one by
// one; and with CSUM on, it leaves checksums for us to finish. This is what a
// NIC does in hardware (the kernel's tcp_gso_segment / udp4_ufo_fragment and
// wireguard-go's tun/offload_linux.go cut the same way).
//
// All functions work on (buffer, offset) pairs and allocate nothing.

import { put16, put32, u16be, u16le, u32be } from './bytes.js';
import { pseudoHeaderSum, sum16 } from './checksum.js';

export { sum16 };

export const VNET_HDR_LEN = 10;

// struct virtio_net_hdr (little-endian on every host we run on).
const FLAGS = 0;
const GSO_TYPE = 1;
const GSO_SIZE = 4;
const CSUM_START = 6;
const CSUM_OFFSET = 8;

export const VNET_F_NEEDS_CSUM = 1;
/** Set on writes: the packet's checksums are known good (it was authenticated), the stack need not verify them. */
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
const VNET_GSO_ECN = 0x80;

const PROTO_TCP = 6;
const PROTO_UDP = 17;

/** The parts of a virtio_net_hdr segmentation needs. */
export interface VnetHeader {
  flags: number;
  /** VNET_GSO_* without the ECN bit. */
  gsoType: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Reads the header at buf[off]; `into` is reused to avoid an allocation per packet. */
export function readVnetHeader(buf: Uint8Array, off: number, into: VnetHeader): VnetHeader {
  into.flags = buf[off + FLAGS]!;
  into.gsoType = buf[off + GSO_TYPE]! & ~VNET_GSO_ECN;
  into.gsoSize = u16le(buf, off + GSO_SIZE);
  into.csumStart = u16le(buf, off + CSUM_START);
  into.csumOffset = u16le(buf, off + CSUM_OFFSET);
  return into;
}

/** Writes a header for one plain packet (no GSO, no checksum left to do). */
export function writePlainVnetHeader(buf: Uint8Array, off: number, flags = 0): void {
  buf.fill(0, off, off + VNET_HDR_LEN);
  buf[off + FLAGS] = flags;
}

export class GsoError extends Error {}

/**
 * How many segments the packet at pkt[off, off + len) (vnet header removed)
 * becomes: 1 without GSO. Throws GsoError for a header this code cannot
 * honour (UFO, an unknown type, headers that do not fit), so the caller drops
 * and counts the packet instead of sending something broken.
 */
export function segmentCount(pkt: Uint8Array, off: number, len: number, h: VnetHeader): number {
  if (h.gsoType === VNET_GSO_NONE) return 1;
  const hl = headersLength(pkt, off, len, h);
  if (h.gsoSize === 0) throw new GsoError('GSO packet with a zero segment size');
  return Math.max(1, Math.ceil((len - hl) / h.gsoSize));
}

/** Length of the IP + TCP/UDP headers of a GSO packet. */
function headersLength(pkt: Uint8Array, off: number, len: number, h: VnetHeader): number {
  const t = h.csumStart;
  if (h.gsoType === VNET_GSO_TCPV4 || h.gsoType === VNET_GSO_TCPV6) {
    if (t + 20 > len) throw new GsoError('TCP header past the end of the packet');
    const hl = t + ((pkt[off + t + 12]! >> 4) << 2);
    if (hl > len || hl < t + 20) throw new GsoError('bad TCP header length');
    return hl;
  }
  if (h.gsoType === VNET_GSO_UDP_L4) {
    if (t + 8 > len) throw new GsoError('UDP header past the end of the packet');
    return t + 8;
  }
  throw new GsoError(`unsupported GSO type ${h.gsoType}`);
}

/**
 * Builds segment i of the packet at pkt[off, off + len) into out[outOff...]
 * with its own IP header (length, IPv4 id and checksum), TCP sequence number
 * and flags (FIN/PSH only on the last, CWR only on the first) or UDP length,
 * and a full transport checksum. Returns the segment's length. Without GSO
 * (i must be 0) it copies the packet and finishes a pending checksum.
 * out must not overlap pkt.
 */
export function writeSegment(pkt: Uint8Array, off: number, len: number, h: VnetHeader, i: number, out: Uint8Array, outOff: number): number {
  if (h.gsoType === VNET_GSO_NONE) {
    out.set(pkt.subarray(off, off + len), outOff);
    if (h.flags & VNET_F_NEEDS_CSUM) finishPartialChecksum(out, outOff, len, h.csumStart, h.csumOffset);
    return len;
  }
  const hl = headersLength(pkt, off, len, h);
  const payload = len - hl;
  const start = i * h.gsoSize;
  const segLen = Math.min(h.gsoSize, payload - start);
  if (segLen <= 0) throw new GsoError(`segment ${i} is past the end of the packet`);
  const last = start + segLen === payload;
  out.set(pkt.subarray(off, off + hl), outOff);
  out.set(pkt.subarray(off + hl + start, off + hl + start + segLen), outOff + hl);
  const total = hl + segLen;
  const version = out[outOff]! >> 4;
  const t = outOff + h.csumStart;
  const l4Len = total - h.csumStart;
  let proto: number;
  if (version === 4) {
    put16(out, outOff + 2, total);
    put16(out, outOff + 4, (u16be(pkt, off + 4) + i) & 0xffff);
    put16(out, outOff + 10, 0);
    const ihl = (out[outOff]! & 0x0f) << 2;
    put16(out, outOff + 10, ~sum16(out, outOff, ihl, 0) & 0xffff);
    proto = out[outOff + 9]!;
  } else if (version === 6) {
    put16(out, outOff + 4, total - 40);
    proto = h.gsoType === VNET_GSO_UDP_L4 ? PROTO_UDP : PROTO_TCP;
  } else {
    throw new GsoError(`GSO packet of IP version ${version}`);
  }
  let csumAt: number;
  if (h.gsoType === VNET_GSO_UDP_L4) {
    put16(out, t + 4, l4Len);
    csumAt = t + 6;
  } else {
    put32(out, t + 4, (u32be(pkt, off + h.csumStart + 4) + start) >>> 0);
    let flags = out[t + 13]!;
    if (!last) flags &= ~0x09; // FIN, PSH
    if (i > 0) flags &= ~0x80; // CWR
    out[t + 13] = flags;
    csumAt = t + 16;
  }
  put16(out, csumAt, 0);
  let c = ~sum16(out, t, l4Len, pseudoHeaderSum(out, outOff, version, proto, l4Len)) & 0xffff;
  // UDP sends a computed zero as all ones (zero means "no checksum").
  if (c === 0 && h.gsoType === VNET_GSO_UDP_L4) c = 0xffff;
  put16(out, csumAt, c);
  return total;
}

/** The virtio rule for a packet whose checksum the kernel left to us: sum from csumStart to the end (the field holds the pseudo-header sum), store the complement. */
export function finishPartialChecksum(buf: Uint8Array, off: number, len: number, csumStart: number, csumOffset: number): void {
  if (csumStart + csumOffset + 2 > len) throw new GsoError('checksum offset past the end of the packet');
  const c = ~sum16(buf, off + csumStart, len - csumStart, 0) & 0xffff;
  put16(buf, off + csumStart + csumOffset, c);
}
