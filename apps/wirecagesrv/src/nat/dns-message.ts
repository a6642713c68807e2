// The little of the DNS wire format (RFC 1035 4.1) the forwarder reads: the
// header and the question, to match answers to queries and to answer
// SERVFAIL itself. Everything else passes through untouched, the TC bit
// included, so a client retries over TCP when an answer did not fit.

export const HEADER_BYTES = 12;
export const RCODE_SERVFAIL = 2;

const QR = 0x80; // byte 2
const OPCODE_RD = 0x79; // byte 2: opcode and RD, kept in a SERVFAIL

export function isQuery(msg: Buffer): boolean {
  return msg.length >= HEADER_BYTES && (msg[2]! & QR) === 0;
}

export function isResponse(msg: Buffer): boolean {
  return msg.length >= HEADER_BYTES && (msg[2]! & QR) !== 0;
}

export const messageId = (msg: Buffer): number => msg.readUInt16BE(0);

/** A copy of `msg` with another id (the forwarder's own towards the upstream, the client's back). */
export function withId(msg: Buffer, id: number): Buffer {
  const out = Buffer.from(msg);
  out.writeUInt16BE(id, 0);
  return out;
}

/**
 * The bytes of the first question (name, type, class), or null when the
 * message has none or it is malformed. Names in a question are never
 * compressed in queries; a pointer here is treated as malformed.
 */
export function firstQuestion(msg: Buffer): Buffer | null {
  if (msg.length < HEADER_BYTES || msg.readUInt16BE(4) === 0) return null;
  let at = HEADER_BYTES;
  for (let labels = 0; labels < 128; labels++) {
    const len = msg[at];
    if (len === undefined || len > 63) return null;
    at += 1 + len;
    if (len === 0) return at + 4 <= msg.length ? msg.subarray(HEADER_BYTES, at + 4) : null;
  }
  return null;
}

/** SERVFAIL for `query`, with its id, opcode, RD and question (when it has a well-formed one). */
export function servfail(query: Buffer): Buffer {
  const question = firstQuestion(query);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(messageId(query), 0);
  header[2] = QR | (query[2]! & OPCODE_RD);
  header[3] = 0x80 | RCODE_SERVFAIL; // RA: this server does recurse, through its upstreams
  header.writeUInt16BE(question ? 1 : 0, 4);
  return question ? Buffer.concat([header, question]) : header;
}
