// DNS messages for the lab resolvers (cage/fixtures/dns-server.mjs,
// server/fixtures/dns-upstream.mjs): the question of a query, and an
// authoritative answer with A or AAAA records. Plain JavaScript, as the
// fixtures run under node without tsx.
import { isIPv4, isIPv6 } from 'node:net';

export const TYPE_A = 1;
export const TYPE_AAAA = 28;

/** The question of `query`: its name in lower case, its type, and the offset just past it. */
export function readQuestion(query) {
  const labels = [];
  let at = 12;
  for (;;) {
    const len = query[at];
    if (len === undefined || len > 63) throw new Error('bad or compressed name in question');
    at += 1;
    if (len === 0) break;
    labels.push(query.subarray(at, at + len).toString('latin1'));
    at += len;
  }
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(at), end: at + 4 };
}

function ipBytes(ip) {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/**
 * The answer to `query` (whose question is `q`, from readQuestion): the addresses of `ips` that
 * fit the question's type, NOERROR with none for other types, NXDOMAIN when `ips` is undefined.
 * An answer longer than `limit` bytes goes out truncated: TC set, no records.
 */
export function buildAnswer(query, q, ips, limit = Infinity) {
  const wanted = (ips ?? []).filter((ip) => (q.type === TYPE_A ? isIPv4(ip) : q.type === TYPE_AAAA ? isIPv6(ip) : false));
  const rrs = wanted.map((ip) => {
    const rdata = ipBytes(ip);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the name in the question
    rr.writeUInt16BE(q.type, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  const truncated = rrs.reduce((n, rr) => n + rr.length, q.end) > limit;
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  // QR, AA, the query's RD, TC when cut; RCODE 3 (NXDOMAIN) for unknown names.
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (truncated ? 0x0200 : 0) | (ips ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(truncated ? 0 : rrs.length, 6);
  return Buffer.concat([header, query.subarray(12, q.end), ...(truncated ? [] : rrs)]);
}
