// UDP datagrams as IP packets, for the tests that hand packets to an engine's
// "TUN" side (`@wirecage/netns/lab`): the wg-engine and metrics suites build
// theirs here. Checksums are left zero: the engine reads none of them.
import { isIPv4, isIPv6 } from 'node:net';

export interface UdpPorts {
  /** Default 1234. */
  sport?: number;
  /** Default 5678. */
  dport?: number;
}

/** The 16 bytes of an IPv6 address in hex groups ("fd00::2"; not the dotted-quad tail forms). */
function ipv6Bytes(address: string): Buffer {
  if (address.includes('.')) throw new Error(`udpPacket: write ${address} in hex groups only`);
  const [head = '', tail] = address.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const [h, t] = [groups(head), tail === undefined ? [] : groups(tail)];
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return out;
}

/** A UDP datagram from `src` to `dst` (both IPv4 or both IPv6, plain addresses) carrying `payload`. */
export function udpPacket(src: string, dst: string, payload: Buffer | string, ports: UdpPorts = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const udp = Buffer.alloc(8 + body.length);
  udp.writeUInt16BE(ports.sport ?? 1234, 0);
  udp.writeUInt16BE(ports.dport ?? 5678, 2);
  udp.writeUInt16BE(udp.length, 4);
  body.copy(udp, 8);
  if (isIPv4(src) && isIPv4(dst)) {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + udp.length, 2);
    ip[8] = 64;
    ip[9] = 17;
    Buffer.from(src.split('.').map(Number)).copy(ip, 12);
    Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
    return Buffer.concat([ip, udp]);
  }
  if (isIPv6(src) && isIPv6(dst)) {
    const ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(udp.length, 4);
    ip[6] = 17;
    ip[7] = 64;
    ipv6Bytes(src).copy(ip, 8);
    ipv6Bytes(dst).copy(ip, 24);
    return Buffer.concat([ip, udp]);
  }
  throw new Error(`udpPacket: ${JSON.stringify(src)} and ${JSON.stringify(dst)} must be two IPv4 or two IPv6 addresses`);
}
