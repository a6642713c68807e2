// Netlink framing for the flow log's netfilter messages: a message header with
// nfnetlink's family header, attributes (nested or not), and walking a
// datagram's messages and a message's attributes. Only what nf_tables and
// ctnetlink need; host byte order for netlink's own fields, network order for
// nfnetlink's values, as the kernel has them.

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;

/** An attribute: a value, or a list of attributes nested in it. */
export type Attr = { type: number; value: Buffer } | { type: number; nested: Attr[] };

const align4 = (n: number) => (n + 3) & ~3;

export const str = (type: number, text: string): Attr => ({ type, value: Buffer.from(`${text}\0`) });
export const be32 = (type: number, n: number): Attr => {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(n);
  return { type, value };
};
export const nest = (type: number, nested: Attr[]): Attr => ({ type, nested });

function encodeAttrs(attrs: Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const body = 'nested' in a ? encodeAttrs(a.nested) : a.value;
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + body.length, 0);
    head.writeUInt16LE(a.type | ('nested' in a ? NLA_F_NESTED : 0), 2);
    parts.push(head, body, Buffer.alloc(align4(body.length) - body.length));
  }
  return Buffer.concat(parts);
}

/** One message: netlink header, nfgenmsg (family, version 0, res_id in network order), attributes. */
export function nfMessage(type: number, flags: number, seq: number, family: number, attrs: Attr[] = [], resId = 0): Buffer {
  const body = encodeAttrs(attrs);
  const m = Buffer.alloc(NLMSG_HDRLEN + NFGENMSG_LEN);
  m.writeUInt32LE(NLMSG_HDRLEN + NFGENMSG_LEN + body.length, 0);
  m.writeUInt16LE(type, 4);
  m.writeUInt16LE(flags, 6);
  m.writeUInt32LE(seq, 8);
  m.writeUInt32LE(0, 12);
  m.writeUInt8(family, 16);
  m.writeUInt8(0, 17);
  m.writeUInt16BE(resId, 18);
  return Buffer.concat([m, body]);
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** nfgenmsg's family (after the header); undefined for NLMSG_ERROR/DONE. */
  family?: number;
  /** NLMSG_ERROR's errno, positive (0 is an acknowledgement). */
  errno?: number;
  /** The payload after nfgenmsg. */
  attrs: Buffer;
}

/** The messages of one datagram; a truncated one ends the walk (the kernel never sends one). */
export function* messages(datagram: Buffer): Generator<NlMessage> {
  let off = 0;
  while (off + NLMSG_HDRLEN <= datagram.length) {
    const len = datagram.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > datagram.length) return;
    const type = datagram.readUInt16LE(off + 4);
    const flags = datagram.readUInt16LE(off + 6);
    const seq = datagram.readUInt32LE(off + 8);
    if (type === NLMSG_ERROR) {
      yield { type, flags, seq, errno: -datagram.readInt32LE(off + NLMSG_HDRLEN), attrs: Buffer.alloc(0) };
    } else if (type === NLMSG_DONE || len < NLMSG_HDRLEN + NFGENMSG_LEN) {
      yield { type, flags, seq, attrs: Buffer.alloc(0) };
    } else {
      const family = datagram.readUInt8(off + NLMSG_HDRLEN);
      yield { type, flags, seq, family, attrs: datagram.subarray(off + NLMSG_HDRLEN + NFGENMSG_LEN, off + len) };
    }
    off += align4(len);
  }
}

/** A message's (or a nested attribute's) attributes by type; the last one of a type wins. */
export function attrsOf(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}
