// TCP receive coalescing (GRO) for TUN writes, the protocol half: consecutive
// segments of one TCP flow become one super-packet with a virtio_net_hdr that
// asks the kernel for TCP GSO, so the stack takes one 20-60 KiB packet where it
// would take twenty 1.4 KiB ones. The kernel's tcp_gro_receive and
// wireguard-go's tun/offload_linux.go apply the same rules; the ones here are
// deliberately stricter (only adjacent packets, only plain ACK/PSH segments).
//
// The packets stay where they are. A group's first packet (the head) gets the
// rewritten headers; each later one keeps only its TCP payload, and the writer
// gathers them with one writev (see the GATHER slot field).
import { bytesEqual, put16, put16le, u16be, u32be } from './bytes.js';
import { pseudoHeaderSum, sum16 } from './checksum.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_HDR_LEN } from './gso.js';

/** Most packets joined into one write (the kernel's own GRO stops at 64 segments too). */
export const GRO_MAX_SEGMENTS = 64;
/** An IPv4 total length, and the largest GSO packet the kernel takes. */
const MAX_PACKET = 65535;
const PROTO_TCP = 6;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;

/** One packet's fields, parsed once. */
interface Segment {
  ip: number;
  version: number;
  ipLen: number;
  tcp: number;
  tcpLen: number;
  payload: number;
  seq: number;
  flags: number;
}

const blank = (): Segment => ({ ip: 0, version: 0, ipLen: 0, tcp: 0, tcpLen: 0, payload: 0, seq: 0, flags: 0 });

/**
 * Coalesces runs of TCP segments among n packets of u8. Packet k has its
 * 10-byte virtio_net_hdr at offs[k] followed by the IP packet, lens[k] bytes
 * in all (0: no packet, which ends any run). On return gather[k] is the number
 * of packets after k joined to it (0: k is written alone), or -1 when k was
 * joined to an earlier packet: offs[k]/lens[k] then frame only its TCP payload.
 * A head's IP length and checksum, TCP flags and checksum field and its
 * virtio_net_hdr are rewritten for GSO. Returns how many packets were joined.
 */
export function coalesceTcp(u8: Uint8Array, offs: Int32Array, lens: Int32Array, gather: Int32Array, n: number): number {
  const head = blank();
  const last = blank();
  const cur = blank();
  let joined = 0;
  let k = 0;
  while (k < n) {
    gather[k] = 0;
    if (!parse(u8, offs[k]!, lens[k]!, head)) {
      k++;
      continue;
    }
    copy(head, last);
    let total = head.ipLen + head.tcpLen + head.payload;
    let members = 0;
    let next = k + 1;
    while (next < n && members + 1 < GRO_MAX_SEGMENTS && parse(u8, offs[next]!, lens[next]!, cur) && joins(u8, head, last, cur, total)) {
      total += cur.payload;
      copy(cur, last);
      gather[next] = -1;
      members++;
      next++;
    }
    if (members > 0) {
      for (let m = k + 1; m < next; m++) {
        const pay = payloadStart(u8, offs[m]!);
        lens[m] = offs[m]! + lens[m]! - pay;
        offs[m] = pay;
      }
      rewriteHead(u8, offs[k]!, head, total, last.flags);
      gather[k] = members;
      joined += members;
    }
    k = next;
  }
  return joined;
}

function copy(from: Segment, to: Segment): void {
  to.ip = from.ip;
  to.version = from.version;
  to.ipLen = from.ipLen;
  to.tcp = from.tcp;
  to.tcpLen = from.tcpLen;
  to.payload = from.payload;
  to.seq = from.seq;
  to.flags = from.flags;
}

/** Fills s for a packet that may take part in coalescing: plain TCP data with ACK (and maybe PSH). */
function parse(u8: Uint8Array, off: number, len: number, s: Segment): boolean {
  const ip = off + VNET_HDR_LEN;
  const size = len - VNET_HDR_LEN;
  if (size < 40) return false;
  const version = u8[ip]! >> 4;
  let ipLen: number;
  if (version === 4) {
    // No options, TCP, not a fragment, and the declared length is the packet.
    if (u8[ip] !== 0x45 || u8[ip + 9] !== PROTO_TCP || (u16be(u8, ip + 6) & 0x3fff) !== 0 || u16be(u8, ip + 2) !== size) return false;
    ipLen = 20;
  } else if (version === 6) {
    // TCP right after the fixed header: no extension headers.
    if (size < 60 || u8[ip + 6] !== PROTO_TCP || u16be(u8, ip + 4) + 40 !== size) return false;
    ipLen = 40;
  } else {
    return false;
  }
  const tcp = ip + ipLen;
  const tcpLen = (u8[tcp + 12]! >> 4) << 2;
  if (tcpLen < 20 || ipLen + tcpLen >= size) return false;
  const flags = u8[tcp + 13]!;
  // Nothing but ACK or ACK|PSH (and no NS bit): SYN, FIN, RST, URG, ECE and CWR each end coalescing, as in the kernel.
  if ((flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) || (u8[tcp + 12]! & 0x0f) !== 0) return false;
  s.ip = ip;
  s.version = version;
  s.ipLen = ipLen;
  s.tcp = tcp;
  s.tcpLen = tcpLen;
  s.payload = size - ipLen - tcpLen;
  s.seq = u32be(u8, tcp + 4);
  s.flags = flags;
  return true;
}

/** Whether cur continues the group that head started and last ended, in `total` bytes so far. */
function joins(u8: Uint8Array, head: Segment, last: Segment, cur: Segment, total: number): boolean {
  // A pushed or short segment ends its group; later ones would not be full-sized segments of it.
  if (last.flags & TCP_PSH || last.payload !== head.payload) return false;
  if (cur.payload > head.payload || total + cur.payload > MAX_PACKET) return false;
  if (cur.version !== head.version || cur.tcpLen !== head.tcpLen) return false;
  if (cur.seq !== (last.seq + last.payload) >>> 0) return false;
  if (head.version === 4) {
    // TOS, TTL, DF and the addresses; ids must count up unless DF makes them meaningless.
    if (u8[cur.ip + 1] !== u8[head.ip + 1] || u8[cur.ip + 8] !== u8[head.ip + 8]) return false;
    const df = u8[cur.ip + 6]! & 0x40;
    if (df !== (u8[head.ip + 6]! & 0x40)) return false;
    if (!df && u16be(u8, cur.ip + 4) !== ((u16be(u8, last.ip + 4) + 1) & 0xffff)) return false;
    if (!bytesEqual(u8, cur.ip + 12, u8, head.ip + 12, 8)) return false;
  } else {
    // Version, traffic class and flow label; hop limit; the addresses.
    if (!bytesEqual(u8, cur.ip, u8, head.ip, 4) || u8[cur.ip + 7] !== u8[head.ip + 7]) return false;
    if (!bytesEqual(u8, cur.ip + 8, u8, head.ip + 8, 32)) return false;
  }
  // Ports, then acknowledgment number; window; options (timestamps included) byte for byte.
  return (
    bytesEqual(u8, cur.tcp, u8, head.tcp, 4) &&
    bytesEqual(u8, cur.tcp + 8, u8, head.tcp + 8, 4) &&
    bytesEqual(u8, cur.tcp + 14, u8, head.tcp + 14, 2) &&
    bytesEqual(u8, cur.tcp + 20, u8, head.tcp + 20, head.tcpLen - 20)
  );
}

function payloadStart(u8: Uint8Array, off: number): number {
  const ip = off + VNET_HDR_LEN;
  const tcp = ip + (u8[ip]! >> 4 === 4 ? 20 : 40);
  return tcp + ((u8[tcp + 12]! >> 4) << 2);
}

/**
 * The head of a group becomes a GSO super-packet of `total` IP bytes: the
 * kernel cuts it back at head.payload bytes a segment (or hands it whole to a
 * local TCP socket), completing the TCP checksum from the pseudo-header sum
 * left in the field, as virtio's NEEDS_CSUM asks.
 */
function rewriteHead(u8: Uint8Array, off: number, head: Segment, total: number, lastFlags: number): void {
  const ip = head.ip;
  if (head.version === 4) {
    put16(u8, ip + 2, total);
    put16(u8, ip + 10, 0);
    put16(u8, ip + 10, ~sum16(u8, ip, 20, 0) & 0xffff);
  } else {
    put16(u8, ip + 4, total - 40);
  }
  u8[head.tcp + 13] = head.flags | (lastFlags & TCP_PSH);
  put16(u8, head.tcp + 16, pseudoHeaderSum(u8, ip, head.version, PROTO_TCP, total - head.ipLen));
  u8[off] = VNET_F_NEEDS_CSUM;
  u8[off + 1] = head.version === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
  put16le(u8, off + 2, head.ipLen + head.tcpLen);
  put16le(u8, off + 4, head.payload);
  put16le(u8, off + 6, head.ipLen);
  put16le(u8, off + 8, 16);
}
