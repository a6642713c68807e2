// ctnetlink's messages for the flow log: the event groups, the dump request,
// and a conntrack entry parsed into what the log says about a flow (its
// original direction's 5-tuple, or ICMP's type/code/id, and its counters).
import { NLM_F_DUMP, NLM_F_REQUEST, attrsOf, nfMessage, type NlMessage } from './flow-log-netlink.js';

export const NFNLGRP_CONNTRACK_NEW = 1;
export const NFNLGRP_CONNTRACK_DESTROY = 3;
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;
export const CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
export const CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;

const CTA_TUPLE_ORIG = 1;
const CTA_COUNTERS_ORIG = 9;
const CTA_COUNTERS_REPLY = 10;
const CTA_ID = 12;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const CTA_PROTO_ICMP_ID = 4;
const CTA_PROTO_ICMP_TYPE = 5;
const CTA_PROTO_ICMP_CODE = 6;
const CTA_PROTO_ICMPV6_ID = 7;
const CTA_PROTO_ICMPV6_TYPE = 8;
const CTA_PROTO_ICMPV6_CODE = 9;
const CTA_COUNTERS_PACKETS = 1;
const CTA_COUNTERS_BYTES = 2;

const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp', 136: 'udplite', 47: 'gre' };

export interface Counters {
  packets: number;
  bytes: number;
}

/** What names a flow: its protocol and its original direction's addresses and ports (or ICMP id). */
export interface FlowTuple {
  protocol: string;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  icmp?: { type: number; code: number; id: number };
}

export interface Flow extends FlowTuple {
  /** The kernel's id of the entry, which ties a flow's end to its start. */
  id: number;
  /** From src to dst (the original direction) and back; absent without nf_conntrack_acct. */
  toDst?: Counters;
  toSrc?: Counters;
}

/** A dump of every entry of both families (AF_UNSPEC). */
export function dumpRequest(seq: number): Buffer {
  return nfMessage((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, 0);
}

/** An IPv4 or IPv6 address's text (IPv6 in its shortest form). */
export function addressText(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The shortest form (RFC 5952): the longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function counters(b: Buffer | undefined): Counters | undefined {
  if (!b) return undefined;
  const a = attrsOf(b);
  const p = a.get(CTA_COUNTERS_PACKETS);
  const y = a.get(CTA_COUNTERS_BYTES);
  if (p?.length !== 8 || y?.length !== 8) return undefined;
  return { packets: Number(p.readBigUInt64BE()), bytes: Number(y.readBigUInt64BE()) };
}

/** A conntrack entry (an event or a dump's reply), or undefined when it lacks a tuple the log can state. */
export function parseFlow(m: NlMessage): Flow | undefined {
  const top = attrsOf(m.attrs);
  const tuple = top.get(CTA_TUPLE_ORIG);
  const id = top.get(CTA_ID);
  if (!tuple || id?.length !== 4) return undefined;
  const t = attrsOf(tuple);
  const ip = attrsOf(t.get(CTA_TUPLE_IP) ?? Buffer.alloc(0));
  const proto = attrsOf(t.get(CTA_TUPLE_PROTO) ?? Buffer.alloc(0));
  const src = addressText(ip.get(CTA_IP_V4_SRC) ?? ip.get(CTA_IP_V6_SRC));
  const dst = addressText(ip.get(CTA_IP_V4_DST) ?? ip.get(CTA_IP_V6_DST));
  const num = proto.get(CTA_PROTO_NUM)?.readUInt8();
  if (src === undefined || dst === undefined || num === undefined) return undefined;
  const flow: Flow = { id: id.readUInt32BE(), protocol: PROTOCOLS[num] ?? `ip-proto-${num}`, src, dst };
  const sport = proto.get(CTA_PROTO_SRC_PORT);
  const dport = proto.get(CTA_PROTO_DST_PORT);
  if (sport?.length === 2 && dport?.length === 2) [flow.sport, flow.dport] = [sport.readUInt16BE(), dport.readUInt16BE()];
  const v6 = num === 58;
  const type = proto.get(v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE);
  const code = proto.get(v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE);
  const icmpId = proto.get(v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID);
  if (type && code && icmpId?.length === 2) flow.icmp = { type: type.readUInt8(), code: code.readUInt8(), id: icmpId.readUInt16BE() };
  const toDst = counters(top.get(CTA_COUNTERS_ORIG));
  const toSrc = counters(top.get(CTA_COUNTERS_REPLY));
  if (toDst && toSrc) Object.assign(flow, { toDst, toSrc });
  return flow;
}
