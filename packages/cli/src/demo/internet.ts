// The demo lab's "internet": a web server and, when given records, a DNS
// server for them, run by `wirecage demo` as its own process inside a lab
// namespace.
//   node internet.js <http-port> [<name>=<ip>[,<ip>...] ...]
// The web page says where the request came from (through the server's NAT:
// the server's address). DNS answers A and AAAA over UDP port 53, NXDOMAIN
// for other names. Prints "ready" once everything is bound.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

const TYPE_A = 1;
const TYPE_AAAA = 28;

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** The answer to one query; throws on a malformed one. */
function dnsAnswer(query: Buffer, records: Map<string, string[]>): Buffer {
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const len = query[at];
    if (len === undefined || len > 63) throw new Error('malformed question');
    at += 1;
    if (len === 0) break;
    labels.push(query.subarray(at, at + len).toString('latin1'));
    at += len;
  }
  if (at + 4 > query.length) throw new Error('malformed question');
  const type = query.readUInt16BE(at);
  const ips = records.get(labels.join('.').toLowerCase());
  const rrs = (ips ?? [])
    .filter((ip) => (type === TYPE_A ? isIPv4(ip) : type === TYPE_AAAA ? isIPv6(ip) : false))
    .map((ip) => {
      const rdata = ipBytes(ip);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name in the question
      rr.writeUInt16BE(type, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([rr, rdata]);
    });
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  // QR, AA, RA, the query's RD; NXDOMAIN for names it does not know.
  header.writeUInt16BE(0x8480 | (query.readUInt16BE(2) & 0x0100) | (ips ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rrs.length, 6);
  return Buffer.concat([header, query.subarray(12, at + 4), ...rrs]);
}

function main(): void {
  const [port, ...entries] = process.argv.slice(2);
  if (!port) {
    process.stderr.write('usage: internet.js <http-port> [<name>=<ip>[,<ip>...] ...]\n');
    process.exit(2);
  }
  const records = new Map(
    entries.map((e) => {
      const [name = '', ips = ''] = e.split('=');
      return [name.toLowerCase(), ips.split(',')] as const;
    }),
  );
  let pending = records.size > 0 ? 2 : 1;
  const ready = () => {
    if (--pending === 0) process.stdout.write('ready\n');
  };
  createServer((req, res) => {
    const from = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    res.end(`hello from the lab web server, you came from ${from}\n`);
  }).listen(Number(port), '::', ready);
  if (records.size > 0) {
    const dns = createSocket({ type: 'udp6' });
    dns.on('message', (msg, r) => {
      try {
        dns.send(dnsAnswer(msg, records), r.port, r.address);
      } catch {
        // not a query we can read: no answer
      }
    });
    dns.bind(53, '::', ready);
  }
}

main();
