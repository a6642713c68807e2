// IP addresses and prefixes as bytes, parsed as strictly as inet_pton(3) and
// printed as inet_ntop(3) prints them, so what `wg` reads from us and what we
// print match `wg show` character for character.

export type IpFamily = 4 | 6;

export interface Cidr {
  family: IpFamily;
  /** 4 or 16 bytes; host bits cleared unless parsed with keepHostBits (an interface address). */
  address: Buffer;
  prefix: number;
}

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Dotted quad into out[at..at+3]; false if text is not one (leading zeros are refused, as inet_pton does). */
function parseIpv4Into(text: string, out: Buffer, at: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!DECIMAL_OCTET.test(p) || Number(p) > 255) return false;
    out[at + i] = Number(p);
  }
  return true;
}

function parseIpv6(text: string): Buffer | null {
  const out = Buffer.alloc(16);
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  // A dotted quad may stand for the last two groups.
  const last = halves.length === 2 ? tail : head;
  let v4: string | undefined;
  if (last.length > 0 && last[last.length - 1]!.includes('.')) v4 = last.pop();
  const words = head.length + tail.length + (v4 === undefined ? 0 : 2);
  if (halves.length === 2 ? words > 7 : words !== 8) return null;
  let at = 0;
  for (const g of head) {
    if (!HEX_GROUP.test(g)) return null;
    out.writeUInt16BE(parseInt(g, 16), at);
    at += 2;
  }
  at = 16 - (tail.length + (v4 === undefined ? 0 : 2)) * 2;
  for (const g of tail) {
    if (!HEX_GROUP.test(g)) return null;
    out.writeUInt16BE(parseInt(g, 16), at);
    at += 2;
  }
  if (v4 !== undefined && !parseIpv4Into(v4, out, 12)) return null;
  return out;
}

/** "192.0.2.1" or "2001:db8::1" (no zone, no brackets) into its bytes; null if it is neither. */
export function parseIp(text: string): { family: IpFamily; address: Buffer } | null {
  if (text.includes(':')) {
    const address = parseIpv6(text);
    return address && { family: 6, address };
  }
  const address = Buffer.alloc(4);
  return parseIpv4Into(text, address, 0) ? { family: 4, address } : null;
}

export interface ParseCidrOptions {
  /** Refuse the other family ("... is not an IPv4 prefix"). */
  family?: IpFamily;
  /** Refuse a bare address: a pool or a route needs "/len" written out. */
  requirePrefix?: boolean;
  /** Keep the host bits: an interface address (10.0.0.2/24) names the host and its subnet at once, as wg-quick's Address does. */
  keepHostBits?: boolean;
}

/** Parses "10.0.0.0/8", "fd00::/64", or a bare address (a host prefix). Host bits are cleared unless opts.keepHostBits. */
export function parseCidr(text: string, opts: ParseCidrOptions = {}): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const ip = parseIp(slash < 0 ? t : t.slice(0, slash));
  if (!ip) {
    const hint = t.includes('%') ? ' (a zone such as %eth0 has no place in a prefix)' : '';
    throw new Error(`"${text}" is not an IPv4 or IPv6 address or prefix${hint}`);
  }
  if (opts.family !== undefined && ip.family !== opts.family) {
    throw new Error(`"${text}" is not an IPv${opts.family} ${slash < 0 ? 'address' : 'prefix'}`);
  }
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) {
    if (opts.requirePrefix) throw new Error(`"${text}" needs a prefix length, such as /${ip.family === 4 ? 24 : 64}`);
    return { family: ip.family, address: ip.address, prefix: max };
  }
  const p = t.slice(slash + 1);
  if (!/^[0-9]+$/.test(p) || Number(p) > max) {
    throw new Error(`"${text}" has prefix length "${p}"; IPv${ip.family} allows 0-${max}`);
  }
  const prefix = Number(p);
  return { family: ip.family, address: opts.keepHostBits ? ip.address : maskAddress(ip.address, prefix), prefix };
}

/** A copy of address with every bit past prefix cleared. */
export function maskAddress(address: Uint8Array, prefix: number): Buffer {
  const out = Buffer.from(address);
  for (let i = 0; i < out.length; i++) {
    const keep = prefix - i * 8;
    if (keep <= 0) out[i] = 0;
    else if (keep < 8) out[i] = out[i]! & (0xff << (8 - keep));
  }
  return out;
}

/** "10.0.0.0/8", "fd00::/64". */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.address)}/${c.prefix}`;
}

/** 4 or 16 bytes as inet_ntop prints them (RFC 5952 "::", and the IPv4-mapped/-compatible dotted tails glibc uses). */
export function formatIp(address: Uint8Array): string {
  if (address.length === 4) return `${address[0]}.${address[1]}.${address[2]}.${address[3]}`;
  if (address.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${address.length}`);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((address[i]! << 8) | address[i + 1]!);
  // The first longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (bestLen < 2) best = -1;
  if (best === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
    const v4 = `${address[12]}.${address[13]}.${address[14]}.${address[15]}`;
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
