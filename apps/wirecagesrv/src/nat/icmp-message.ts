// ICMP echo messages as bytes, for the ping relay (icmp-relay.ts): the
// sockets carry messages from their ICMP header on (plus the IPv4 header on a
// raw IPv4 socket), and everything inside them is read and written here.

import { sum16 } from '@wirecage/tun';

export const ICMP4_ECHO_REPLY = 0;
export const ICMP4_ECHO_REQUEST = 8;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;

const ECHO_HEADER = 8;
const IPPROTO_ICMP = 1;

export interface Echo {
  type: number;
  code: number;
  id: number;
  seq: number;
  /** A view into the message (copy it to keep it past the next read). */
  payload: Buffer;
}

/** The Internet checksum (RFC 1071) of `b`: 0 over a message whose checksum field is right. */
export function internetChecksum(b: Uint8Array): number {
  return ~sum16(b, 0, b.length, 0) & 0xffff;
}

/** An echo message's fields; null when `m` is shorter than an echo header. */
export function parseEcho(m: Buffer): Echo | null {
  if (m.length < ECHO_HEADER) return null;
  return { type: m[0]!, code: m[1]!, id: m.readUInt16BE(4), seq: m.readUInt16BE(6), payload: m.subarray(ECHO_HEADER) };
}

/**
 * An echo message. With `checksum` the ICMPv4 checksum is filled in; without
 * it the field is 0, for the kernel to fill (ICMPv6 on a raw socket, and every
 * ping socket).
 */
export function buildEcho(type: number, id: number, seq: number, payload: Uint8Array, checksum: boolean): Buffer {
  const m = Buffer.allocUnsafe(ECHO_HEADER + payload.length);
  m[0] = type;
  m[1] = 0;
  m.writeUInt16BE(0, 2);
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(seq, 6);
  m.set(payload, ECHO_HEADER);
  if (checksum) m.writeUInt16BE(internetChecksum(m), 2);
  return m;
}

/**
 * The ICMP message inside an IPv4 packet as a raw socket hands it over (the
 * kernel has reassembled fragments); null unless it is a whole, unfragmented
 * ICMP packet whose ICMP checksum is right (the kernel leaves that check to the
 * ICMP layer, which raw sockets come before).
 */
export function icmpInIpv4(packet: Buffer): Buffer | null {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return null;
  const headerLength = (packet[0]! & 0x0f) * 4;
  const total = packet.readUInt16BE(2);
  if (headerLength < 20 || total < headerLength + ECHO_HEADER || total > packet.length) return null;
  if (packet[9] !== IPPROTO_ICMP || (packet.readUInt16BE(6) & 0x3fff) !== 0) return null;
  const icmp = packet.subarray(headerLength, total);
  return internetChecksum(icmp) === 0 ? icmp : null;
}
