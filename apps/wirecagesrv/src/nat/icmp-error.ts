// ICMP error messages as bytes, for the errors the NAT passes back to a peer
// (icmp-error-sender.ts). The host-side socket learns of an error about the
// datagram it sent; the peer must get one about the datagram *it* sent, so the
// quoted packet is rebuilt from the flow: an IP header from the peer to its
// destination, the peer's own UDP ports or echo identifier, and as much of
// the payload as the error brought back.
import { sum16 } from '@wirecage/tun';
import { parseCidr } from '@wirecage/wg-engine';
import { internetChecksum } from './icmp-message.js';

export const ICMP4_DEST_UNREACH = 3;
export const ICMP4_TIME_EXCEEDED = 11;
export const ICMP4_NET_UNREACH = 0;
export const ICMP4_HOST_UNREACH = 1;
export const ICMP4_PORT_UNREACH = 3;
export const ICMP4_FRAG_NEEDED = 4;
export const ICMP6_DEST_UNREACH = 1;
export const ICMP6_PACKET_TOO_BIG = 2;
export const ICMP6_TIME_EXCEEDED = 3;
export const ICMP6_NO_ROUTE = 0;
export const ICMP6_ADDR_UNREACH = 3;
export const ICMP6_PORT_UNREACH = 4;

export const IPPROTO_ICMP = 1;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

/** RFC 1812 4.3.2.3: an ICMPv4 error is at most 576 bytes; RFC 4443 2.4(c): ICMPv6 at most the minimum MTU, 1280. */
const MAX_ERROR = { 4: 576, 6: 1280 } as const;
const IP_HEADER = { 4: 20, 6: 40 } as const;
const ICMP_HEADER = 8;
const UDP_HEADER = 8;
/** The TTL written into a rebuilt quoted header: the peer's own is not known here. */
const QUOTED_TTL = 64;

/** The error types worth passing on, per family: destination unreachable, time exceeded, and IPv6's packet too big. */
export function isRelayableError(family: 4 | 6, type: number): boolean {
  return family === 4
    ? type === ICMP4_DEST_UNREACH || type === ICMP4_TIME_EXCEEDED
    : type === ICMP6_DEST_UNREACH || type === ICMP6_PACKET_TOO_BIG || type === ICMP6_TIME_EXCEEDED;
}

/** The ICMP error a router sends when it cannot send a datagram on (connect or send failed with this errno); null for others. */
export function errorForErrno(family: 4 | 6, errno: string): { type: number; code: number } | null {
  if (errno === 'ENETUNREACH')
    return family === 4 ? { type: ICMP4_DEST_UNREACH, code: ICMP4_NET_UNREACH } : { type: ICMP6_DEST_UNREACH, code: ICMP6_NO_ROUTE };
  if (errno === 'EHOSTUNREACH')
    return family === 4 ? { type: ICMP4_DEST_UNREACH, code: ICMP4_HOST_UNREACH } : { type: ICMP6_DEST_UNREACH, code: ICMP6_ADDR_UNREACH };
  return null;
}

/** The packet a peer sent, as an ICMP error quotes it: where from and to, and its transport header and payload (whole or cut). */
export interface QuotedPacket {
  family: 4 | 6;
  source: string;
  destination: string;
  protocol: number;
  /** From the transport header on; its checksum field is filled in here. */
  transport: Buffer;
}

/** A UDP datagram from `source`:`sourcePort` to `destination`:`destinationPort` with (the start of) `payload`. */
export function quotedUdp(
  family: 4 | 6,
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
  payload: Uint8Array,
): QuotedPacket {
  const transport = Buffer.alloc(UDP_HEADER + payload.length);
  transport.writeUInt16BE(sourcePort, 0);
  transport.writeUInt16BE(destinationPort, 2);
  transport.writeUInt16BE(transport.length, 4);
  transport.set(payload, UDP_HEADER);
  return { family, source, destination, protocol: IPPROTO_UDP, transport };
}

/**
 * The bytes of a quoted packet, cut to what fits in an error of `family`
 * (`room` bytes after the error's own headers). The transport checksum is
 * computed over what is quoted: right whenever the whole datagram fits.
 */
export function quotedBytes(q: QuotedPacket, room = MAX_ERROR[q.family] - IP_HEADER[q.family] - ICMP_HEADER): Buffer {
  const header = IP_HEADER[q.family];
  const whole = Buffer.alloc(header + q.transport.length);
  const src = parseCidr(q.source).address;
  const dst = parseCidr(q.destination).address;
  if (q.family === 4) {
    whole[0] = 0x45;
    whole.writeUInt16BE(Math.min(whole.length, 0xffff), 2);
    whole[8] = QUOTED_TTL;
    whole[9] = q.protocol;
    whole.set(src, 12);
    whole.set(dst, 16);
    whole.writeUInt16BE(internetChecksum(whole.subarray(0, header)), 10);
  } else {
    whole.writeUInt32BE(0x60000000, 0);
    whole.writeUInt16BE(Math.min(q.transport.length, 0xffff), 4);
    whole[6] = q.protocol;
    whole[7] = QUOTED_TTL;
    whole.set(src, 8);
    whole.set(dst, 24);
  }
  whole.set(q.transport, header);
  const at = q.protocol === IPPROTO_UDP ? 6 : 2;
  if (q.transport.length >= at + 2) {
    // ICMPv4 has no pseudo-header; UDP and ICMPv6 sum the addresses, protocol and length first.
    const pseudo =
      q.protocol === IPPROTO_ICMP ? 0 : sum16(whole, q.family === 4 ? 12 : 8, q.family === 4 ? 8 : 32, q.protocol + q.transport.length);
    const sum = ~sum16(q.transport, 0, q.transport.length, pseudo) & 0xffff;
    // A UDP checksum that comes out 0 is sent as all ones (0 means "none" in IPv4).
    whole.writeUInt16BE(sum === 0 && q.protocol === IPPROTO_UDP ? 0xffff : sum, header + at);
  }
  return whole.subarray(0, Math.min(whole.length, room));
}

/**
 * An ICMP error message (from its ICMP header on) quoting `quoted`. `mtu`
 * goes where fragmentation needed (IPv4) and packet too big (IPv6) carry it.
 * The ICMPv4 checksum is filled in; the ICMPv6 one is left to the kernel,
 * which computes it on a raw ICMPv6 socket.
 */
export function buildIcmpError(family: 4 | 6, type: number, code: number, mtu: number, quoted: Uint8Array): Buffer {
  const m = Buffer.alloc(ICMP_HEADER + quoted.length);
  m[0] = type;
  m[1] = code;
  if (family === 4 && type === ICMP4_DEST_UNREACH && code === ICMP4_FRAG_NEEDED) m.writeUInt16BE(Math.min(mtu, 0xffff), 6);
  if (family === 6 && type === ICMP6_PACKET_TOO_BIG) m.writeUInt32BE(mtu >>> 0, 4);
  m.set(quoted, ICMP_HEADER);
  if (family === 4) m.writeUInt16BE(internetChecksum(m), 2);
  return m;
}
