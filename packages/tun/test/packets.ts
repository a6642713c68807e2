// Building and parsing just enough IPv4/ICMP to talk to the kernel through a TUN.

export function internetChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function addr(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

export function ipv4Packet(src: string, dst: string, protocol: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header[0] = 0x45;
  header.writeUInt16BE(20 + payload.length, 2);
  header.writeUInt16BE(0x4000, 6); // don't fragment
  header[8] = 64;
  header[9] = protocol;
  addr(src).copy(header, 12);
  addr(dst).copy(header, 16);
  header.writeUInt16BE(internetChecksum(header), 10);
  return Buffer.concat([header, payload]);
}

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

export function icmpEcho(type: number, id: number, seq: number, data: Buffer): Buffer {
  const msg = Buffer.alloc(8 + data.length);
  msg[0] = type;
  msg.writeUInt16BE(id, 4);
  msg.writeUInt16BE(seq, 6);
  data.copy(msg, 8);
  msg.writeUInt16BE(internetChecksum(msg), 2);
  return msg;
}

export interface Ipv4 {
  src: string;
  dst: string;
  protocol: number;
  payload: Buffer;
}

export function parseIpv4(packet: Buffer): Ipv4 | undefined {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return undefined;
  const headerLen = (packet[0]! & 0x0f) * 4;
  const dotted = (at: number): string => [...packet.subarray(at, at + 4)].join('.');
  return {
    src: dotted(12),
    dst: dotted(16),
    protocol: packet[9]!,
    payload: packet.subarray(headerLen, packet.readUInt16BE(2)),
  };
}

export interface IcmpEcho {
  type: number;
  id: number;
  seq: number;
  data: Buffer;
  checksumOk: boolean;
}

export function parseIcmpEcho(ip: Ipv4): IcmpEcho | undefined {
  const m = ip.payload;
  if (ip.protocol !== 1 || m.length < 8) return undefined;
  return { type: m[0]!, id: m.readUInt16BE(4), seq: m.readUInt16BE(6), data: m.subarray(8), checksumOk: internetChecksum(m) === 0 };
}

/**
 * Turns an IPv4 ICMP echo request into its reply in place (addresses swapped,
 * type 0, checksum recomputed); false for any other packet.
 */
export function echoReplyInPlace(p: Uint8Array): boolean {
  if (p.length < 28 || p[0]! >> 4 !== 4 || p[9] !== 1) return false;
  const headerLen = (p[0]! & 0x0f) * 4;
  const total = (p[2]! << 8) | p[3]!;
  if (total > p.length || p[headerLen] !== ICMP_ECHO_REQUEST) return false;
  for (let i = 0; i < 4; i++) {
    const src = p[12 + i]!;
    p[12 + i] = p[16 + i]!;
    p[16 + i] = src;
  }
  const icmp = p.subarray(headerLen, total);
  icmp[0] = ICMP_ECHO_REPLY;
  icmp[2] = 0;
  icmp[3] = 0;
  const sum = internetChecksum(icmp);
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  return true;
}

export interface Tcp {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  payload: Buffer;
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

export function parseTcp(ip: Ipv4): Tcp | undefined {
  const t = ip.payload;
  if (ip.protocol !== 6 || t.length < 20) return undefined;
  return {
    srcPort: t.readUInt16BE(0),
    dstPort: t.readUInt16BE(2),
    seq: t.readUInt32BE(4),
    ack: t.readUInt32BE(8),
    flags: t[13]!,
    payload: t.subarray((t[12]! >> 4) * 4),
  };
}

/**
 * An IPv4 TCP segment, fully checksummed; `mss` adds the MSS option and
 * `windowShift` the window-scale option (as a SYN-ACK needs them).
 */
export function tcpSegment(
  src: string,
  dst: string,
  t: {
    srcPort: number;
    dstPort: number;
    seq: number;
    ack: number;
    flags: number;
    window: number;
    mss?: number;
    windowShift?: number;
    payload?: Buffer;
  },
): Buffer {
  const options: number[] = [];
  if (t.mss !== undefined) options.push(2, 4, t.mss >> 8, t.mss & 0xff);
  if (t.windowShift !== undefined) options.push(1, 3, 3, t.windowShift);
  const header = Buffer.alloc(20 + options.length);
  header.writeUInt16BE(t.srcPort, 0);
  header.writeUInt16BE(t.dstPort, 2);
  header.writeUInt32BE(t.seq >>> 0, 4);
  header.writeUInt32BE(t.ack >>> 0, 8);
  header[12] = (header.length / 4) << 4;
  header[13] = t.flags;
  header.writeUInt16BE(t.window, 14);
  Buffer.from(options).copy(header, 20);
  const pseudo = Buffer.alloc(12);
  addr(src).copy(pseudo, 0);
  addr(dst).copy(pseudo, 4);
  const payload = t.payload ?? Buffer.alloc(0);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(header.length + payload.length, 10);
  header.writeUInt16BE(internetChecksum(Buffer.concat([pseudo, header, payload])), 16);
  return ipv4Packet(src, dst, 6, Buffer.concat([header, payload]));
}
