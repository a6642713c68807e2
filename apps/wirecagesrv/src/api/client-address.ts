// Which client a request comes from, for the per-source limits. Behind a
// reverse proxy every request arrives from the proxy, so one bucket would
// serve everybody; a proxy named by `--trusted-proxy CIDR` is believed about
// the client it relays for, and nobody else is (anyone can send the headers).
//
// From a trusted peer: the hops of `X-Forwarded-For` or `Forwarded: for=`
// (RFC 7239), read from the right (the nearest hop, written by our own
// proxy) past every trusted address; the first untrusted one is the client.
// Entries left of it came from the client itself and are never parsed. A
// request carrying both headers is refused: one of them came from the client
// unchecked, and which one depends on the proxy. A peer on the API's Unix
// socket is a local reverse proxy by definition, and must name the client:
// otherwise every client would share the socket's single bucket.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { parseCidr, parseHostPort, type Cidr } from '@wirecage/wg-engine';
import { HttpError } from './errors.js';

export class TrustedProxies {
  private readonly cidrs: Cidr[];

  /** CIDRs (an address alone is one host); Error naming the bad one. */
  constructor(cidrs: readonly string[] = []) {
    this.cidrs = cidrs.map((t) => {
      try {
        return parseCidr(t);
      } catch (err) {
        throw new Error(`--trusted-proxy: ${(err as Error).message}`, { cause: err });
      }
    });
  }

  get size(): number {
    return this.cidrs.length;
  }

  has(address: string): boolean {
    let bytes: Buffer;
    try {
      bytes = parseCidr(unmapped(address)).address;
    } catch {
      return false;
    }
    return this.cidrs.some((c) => contains(c, bytes));
  }
}

function contains(c: Cidr, addr: Buffer): boolean {
  if (addr.length !== c.address.length) return false;
  for (let i = 0, bits = c.prefix; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== c.address[i]!) return false;
  }
  return true;
}

/** "::ffff:192.0.2.1" (a dual-stack socket's view of an IPv4 peer) as "192.0.2.1". */
function unmapped(address: string): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
}

/** The hops of an X-Forwarded-For value (several headers arrive joined by ", "), client first. */
export function xForwardedFor(value: string): string[] {
  return value.split(',').map((h) => h.trim());
}

/** The for= values of a Forwarded value (RFC 7239), client first; '' for an element without one. */
export function forwardedFor(value: string): string[] {
  const hops: string[] = [];
  // Elements split at commas and pairs at semicolons outside quoted strings.
  for (const element of splitOutsideQuotes(value, ',')) {
    let hop = '';
    for (const pair of splitOutsideQuotes(element, ';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'for') hop = pair.slice(eq + 1).trim();
    }
    hops.push(hop);
  }
  return hops;
}

function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted) i++;
    else if (c === sep && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * The address in one hop: "192.0.2.7", "192.0.2.7:4711", "2001:db8::7",
 * "[2001:db8::7]:4711", quoted as Forwarded writes them; null for anything
 * else ("unknown", an obfuscated "_name", garbage).
 */
export function hopAddress(hop: string): string | null {
  let h = hop.trim();
  if (h.length >= 2 && h.startsWith('"') && h.endsWith('"')) h = h.slice(1, -1).replace(/\\(.)/g, '$1');
  // A bare IPv6 address has colons of its own: only the other forms can carry a port.
  if (isIP(h)) return unmapped(h);
  try {
    return unmapped(parseHostPort(h, { portOptional: true, portZero: true }).host);
  } catch {
    return null;
  }
}

/** The client's address for the limits; HttpError 400 when a proxy's header is required, ambiguous or names no address. */
export function resolveClientAddress(req: IncomingMessage, trusted: TrustedProxies): string {
  const peer = req.socket.remoteAddress;
  // No remote address: a Unix socket (a TCP socket already closed has none either, and is answered by nobody).
  const local = peer === undefined;
  if (!local && !trusted.has(peer)) return peer;
  const xff = header(req, 'x-forwarded-for');
  const fwd = header(req, 'forwarded');
  if (xff !== undefined && fwd !== undefined) {
    throw new HttpError(
      400,
      "the request carries both X-Forwarded-For and Forwarded: the reverse proxy must send one of them (and drop the client's)",
    );
  }
  const hops = xff !== undefined ? xForwardedFor(xff) : fwd !== undefined ? forwardedFor(fwd) : [];
  if (hops.length === 0) {
    if (local)
      throw new HttpError(400, "on the API's Unix socket the reverse proxy must name the client: X-Forwarded-For or Forwarded: for=");
    return peer;
  }
  for (let i = hops.length - 1; i >= 0; i--) {
    const address = hopAddress(hops[i]!);
    if (address === null)
      throw new HttpError(400, `the proxy header names no client address where one is needed: "${hops[i]!.slice(0, 64)}"`);
    if (i === 0 || !trusted.has(address)) return address;
  }
  throw new HttpError(400, 'the proxy header names no client address'); // not reached: i === 0 returns
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const text = Array.isArray(v) ? v.join(', ') : v;
  return text === undefined || text.trim() === '' ? undefined : text;
}

const trustedOf = new WeakMap<IncomingMessage, TrustedProxies>();
const NONE = new TrustedProxies();

/** Tells the limits of this request which proxies the API it reached trusts (the handler does so for each request). */
export function trustProxiesFor(req: IncomingMessage, trusted: TrustedProxies): void {
  trustedOf.set(req, trusted);
}

/** The client's address, for a limiter's bucket; HttpError 400 as resolveClientAddress. */
export function clientAddress(req: IncomingMessage): string {
  return resolveClientAddress(req, trustedOf.get(req) ?? NONE);
}
