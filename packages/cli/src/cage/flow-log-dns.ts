// DNS answers for the flow log: the cage's `udp sport 53 log group G` rule
// (flow-log-kernel.ts) hands each incoming DNS datagram to nfnetlink_log,
// which sends it to the socket bound to group G; here are that binding and
// the packet read into what the log says: the server, the name and type
// asked, the answer's code and its addresses (and CNAMEs). Over UDP only:
// a DNS over TCP answer still shows as a TCP flow to port 53.
import { addressText } from './flow-log-conntrack.js';
import { NLM_F_ACK, NLM_F_REQUEST, attrsOf, nfMessage, type NlMessage } from './flow-log-netlink.js';

/** nfnetlink_log groups are per network namespace: the cage's own, any number does. */
export const DNS_LOG_GROUP = 53;
const NFNL_SUBSYS_ULOG = 4;
const NFULNL_MSG_PACKET = 0;
const NFULNL_MSG_CONFIG = 1;
export const NFUL_PACKET = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
const NFULA_PAYLOAD = 9;

/** Binds the socket to the group, copying whole packets (up to 64 KiB). */
export function bindDnsLog(seq: number): Buffer {
  const mode = Buffer.alloc(6);
  mode.writeUInt32BE(0xffff, 0);
  mode.writeUInt8(2 /* NFULNL_COPY_PACKET */, 4);
  return nfMessage(
    (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
    NLM_F_REQUEST | NLM_F_ACK,
    seq,
    0,
    [
      { type: 1 /* NFULA_CFG_CMD */, value: Buffer.from([1 /* NFULNL_CFG_CMD_BIND */]) },
      { type: 2 /* NFULA_CFG_MODE */, value: mode },
      // Each answer at once: by default the kernel batches 100 packets or waits a second.
      { type: 5 /* NFULA_CFG_QTHRESH */, value: Buffer.from([0, 0, 0, 1]) },
    ],
    DNS_LOG_GROUP,
  );
}

export interface DnsAnswer {
  server: string;
  name: string;
  type: string;
  rcode: string;
  addresses: string[];
  cnames?: string[];
}

const TYPES: Record<number, string> = { 1: 'A', 5: 'CNAME', 28: 'AAAA', 12: 'PTR', 15: 'MX', 16: 'TXT', 33: 'SRV', 65: 'HTTPS' };
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

const ipv4 = (b: Buffer, at: number) => addressText(b.subarray(at, at + 4))!;

const ipv6 = (b: Buffer, at: number) => addressText(b.subarray(at, at + 16))!;

/** A name at `at`, following compression pointers (bounded, against loops). */
function readName(m: Buffer, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    const len = m[at];
    if (len === undefined) throw new RangeError('name past the end');
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = at + 2;
      at = ((len & 0x3f) << 8) | m[at + 1]!;
      continue;
    }
    if (len === 0) return { name: labels.join('.').toLowerCase() || '.', end: end < 0 ? at + 1 : end };
    labels.push(m.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  throw new RangeError('name with too many pointers');
}

/** The DNS message of a UDP datagram from port 53 inside an IPv4 or IPv6 packet, or undefined. */
function udpPayload(p: Buffer): { server: string; dns: Buffer } | undefined {
  const version = p[0]! >> 4;
  let udp: number;
  let server: string;
  if (version === 4 && p.length >= 20) {
    if (p[9] !== 17) return undefined;
    udp = (p[0]! & 0x0f) * 4;
    server = ipv4(p, 12);
  } else if (version === 6 && p.length >= 40) {
    if (p[6] !== 17) return undefined; // extension headers: not from a resolver
    udp = 40;
    server = ipv6(p, 8);
  } else {
    return undefined;
  }
  if (p.length < udp + 8 || p.readUInt16BE(udp) !== 53) return undefined;
  return { server, dns: p.subarray(udp + 8) };
}

/** An nfnetlink_log packet message read as a DNS answer; undefined for anything else or a malformed one. */
export function parseDnsAnswer(msg: NlMessage): DnsAnswer | undefined {
  const payload = attrsOf(msg.attrs).get(NFULA_PAYLOAD);
  const udp = payload && udpPayload(payload);
  if (!udp || udp.dns.length < 12) return undefined;
  const m = udp.dns;
  const flags = m.readUInt16BE(2);
  if (!(flags & 0x8000) || m.readUInt16BE(4) !== 1) return undefined; // a response to one question
  try {
    const q = readName(m, 12);
    const qtype = m.readUInt16BE(q.end);
    const answer: DnsAnswer = {
      server: udp.server,
      name: q.name,
      type: TYPES[qtype] ?? `TYPE${qtype}`,
      rcode: RCODES[flags & 0x0f] ?? `RCODE${flags & 0x0f}`,
      addresses: [],
    };
    let at = q.end + 4;
    for (let i = m.readUInt16BE(6); i > 0; i--) {
      const rr = readName(m, at);
      const type = m.readUInt16BE(rr.end);
      const len = m.readUInt16BE(rr.end + 8);
      const data = rr.end + 10;
      if (data + len > m.length) throw new RangeError('record past the end');
      if (type === 1 && len === 4) answer.addresses.push(ipv4(m, data));
      else if (type === 28 && len === 16) answer.addresses.push(ipv6(m, data));
      else if (type === 5) (answer.cnames ??= []).push(readName(m, data).name);
      at = data + len;
    }
    return answer;
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}
