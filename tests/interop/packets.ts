// ICMP echo packets with correct checksums, so a real kernel on the far side
// of the tunnel answers them.
import { isIPv4 } from 'node:net';
import { parseCidr } from '@wirecage/wg-engine';

function checksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

export function echoRequest(src: string, dst: string, id: number, seq: number, payload = Buffer.from('wirecage interop')): Buffer {
  return isIPv4(src) ? echo4(src, dst, id, seq, payload) : echo6(src, dst, id, seq, payload);
}

function echo4(src: string, dst: string, id: number, seq: number, payload: Buffer): Buffer {
  const icmp = Buffer.alloc(8 + payload.length);
  icmp[0] = 8;
  icmp.writeUInt16BE(id, 4);
  icmp.writeUInt16BE(seq, 6);
  payload.copy(icmp, 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  parseCidr(src).address.copy(ip, 12);
  parseCidr(dst).address.copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([ip, icmp]);
}

function echo6(src: string, dst: string, id: number, seq: number, payload: Buffer): Buffer {
  const icmp = Buffer.alloc(8 + payload.length);
  icmp[0] = 128;
  icmp.writeUInt16BE(id, 4);
  icmp.writeUInt16BE(seq, 6);
  payload.copy(icmp, 8);
  const s = parseCidr(src).address;
  const d = parseCidr(dst).address;
  const pseudo = Buffer.alloc(40);
  s.copy(pseudo, 0);
  d.copy(pseudo, 16);
  pseudo.writeUInt32BE(icmp.length, 32);
  pseudo[39] = 58;
  icmp.writeUInt16BE(checksum(Buffer.concat([pseudo, icmp])), 2);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(icmp.length, 4);
  ip[6] = 58;
  ip[7] = 64;
  s.copy(ip, 8);
  d.copy(ip, 24);
  return Buffer.concat([ip, icmp]);
}

/** {id, seq} when packet is an ICMP (v4 or v6) echo reply, else null. */
export function parseEchoReply(packet: Buffer): { id: number; seq: number; src: Buffer } | null {
  if (packet[0]! >> 4 === 4) {
    const ihl = (packet[0]! & 0x0f) * 4;
    if (packet[9] !== 1 || packet[ihl] !== 0) return null;
    return { id: packet.readUInt16BE(ihl + 4), seq: packet.readUInt16BE(ihl + 6), src: packet.subarray(12, 16) };
  }
  if (packet[0]! >> 4 === 6) {
    if (packet[6] !== 58 || packet[40] !== 129) return null;
    return { id: packet.readUInt16BE(44), seq: packet.readUInt16BE(46), src: packet.subarray(8, 24) };
  }
  return null;
}
