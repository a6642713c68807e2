// The egress policy: which destinations a peer's flows may reach from the
// server's host network. Without it a peer could reach what only the server
// should: its loopback services, the cloud metadata endpoint (169.254.169.254),
// the private network it sits in, the other peers through the server, and
// the server itself on any of its addresses (a connection from the host to
// itself slips past firewalls that filter by interface or source). IPv6
// prefixes that carry an IPv4 address a translator or tunnel delivers to
// (NAT64, 6to4, IPv4-mapped) are judged by that IPv4 address: every IPv4 rule
// is also written as its translations, so the kernel NAT's prefix rules and
// check() stay one list.
import { isIP } from 'node:net';
import { parseCidr, type Cidr } from '@wirecage/wg-engine';

/** Why a destination is refused; null when it is allowed. */
export type RefusalReason =
  | 'loopback'
  | 'link-local'
  | 'private'
  | 'multicast'
  | 'broadcast'
  | 'unspecified'
  | 'reserved'
  | 'server-pool'
  | 'host'
  | 'teredo'
  | 'nat64';

interface Range {
  cidr: Cidr;
  reason: RefusalReason;
}

const range = (text: string, reason: RefusalReason): Range => ({ cidr: parseCidr(text), reason });

/** Always refused (unless an --allow-dest names them): nothing a peer needs, everything an attacker wants. */
const ALWAYS: Range[] = [
  range('0.0.0.0/8', 'unspecified'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local'),
  range('224.0.0.0/4', 'multicast'),
  range('255.255.255.255/32', 'broadcast'),
  range('240.0.0.0/4', 'reserved'),
  // Benchmarking (RFC 2544) and IETF protocol assignments (DS-Lite, NAT64 discovery): never a public destination.
  range('198.18.0.0/15', 'reserved'),
  range('192.0.0.0/24', 'reserved'),
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('fe80::/10', 'link-local'),
  range('ff00::/8', 'multicast'),
  // Teredo embeds the server's and a relay's IPv4 addresses and tunnels out over UDP: nothing to judge it by.
  range('2001::/32', 'teredo'),
  // Local-use NAT64 (RFC 8215): the network picks where the IPv4 sits (RFC 6052, /48 to /96), so only the
  // /96 form is judged by its IPv4 (EMBEDDINGS); the rest of the /48 is refused.
  ...complement(parseCidr('64:ff9b:1::/48'), parseCidr('64:ff9b:1::/96')).map((cidr): Range => ({ cidr, reason: 'nat64' })),
];

/** The local networks: refused unless --allow-lan. */
const LAN: Range[] = [
  range('10.0.0.0/8', 'private'),
  range('172.16.0.0/12', 'private'),
  range('192.168.0.0/16', 'private'),
  range('100.64.0.0/10', 'private'),
  range('fc00::/7', 'private'),
  range('fec0::/10', 'private'),
];

/** IPv6 prefixes whose addresses reach the IPv4 address at byte `offset`. */
const EMBEDDINGS: { prefix: Cidr; offset: number }[] = [
  { prefix: parseCidr('::ffff:0:0/96'), offset: 12 }, // IPv4-mapped: a socket connects to the IPv4 address
  { prefix: parseCidr('64:ff9b::/96'), offset: 12 }, // NAT64 (RFC 6052)
  { prefix: parseCidr('64:ff9b:1::/96'), offset: 12 }, // local-use NAT64 (RFC 8215) as a /96
  { prefix: parseCidr('2002::/16'), offset: 2 }, // 6to4 (RFC 3056): the IPv4 address of the site's router
];

/** An IPv4 prefix as the IPv6 prefixes that embed it (EMBEDDINGS); an IPv6 prefix as itself. */
function withTranslations(c: Cidr): Cidr[] {
  if (c.family === 6) return [c];
  return [
    c,
    ...EMBEDDINGS.map(({ prefix, offset }) => {
      const address = Buffer.from(prefix.address);
      c.address.copy(address, offset);
      return { family: 6 as const, address, prefix: offset * 8 + c.prefix };
    }),
  ];
}

/** The prefixes that cover `outer` except `inner` (one per bit between their lengths). */
function complement(outer: Cidr, inner: Cidr): Cidr[] {
  const out: Cidr[] = [];
  for (let bit = outer.prefix; bit < inner.prefix; bit++) {
    const address = Buffer.from(inner.address);
    address[bit >> 3]! ^= 0x80 >> (bit & 7);
    for (let b = bit + 1; b < 128; b++) address[b >> 3]! &= ~(0x80 >> (b & 7));
    out.push({ family: 6, address, prefix: bit + 1 });
  }
  return out;
}

const translated = (r: Range): Range[] => withTranslations(r.cidr).map((cidr) => ({ cidr, reason: r.reason }));

function contains(c: Cidr, addr: Buffer): boolean {
  if (addr.length !== c.address.length) return false;
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (c.address[i]! & mask)) return false;
  }
  return true;
}

export interface EgressPolicyOptions {
  /** Open the private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7). */
  allowLan?: boolean;
  /** CIDRs opened even when a rule above refuses them (an operator's lab, a LAN service). */
  allowDest?: string[];
  /** The server's own pools: a peer reaches other peers only through the tunnel, never via the NAT. */
  serverPools?: string[];
}

export class EgressPolicy {
  private fixed: Range[] = [];
  private allowed: Cidr[] = [];
  private host: Range[] = [];
  private readonly serverPools: readonly string[];

  constructor(opts: EgressPolicyOptions = {}) {
    this.serverPools = opts.serverPools ?? [];
    this.reconfigure(opts);
  }

  /**
   * A reload's new --allow-lan and --allow-dest (the pools and the host's addresses stay): judged from
   * the next check() on, so flows already admitted carry on. Throws, changing nothing, on a bad CIDR.
   */
  reconfigure(opts: Pick<EgressPolicyOptions, 'allowLan' | 'allowDest'>): void {
    const allowed = (opts.allowDest ?? []).flatMap((text) => withTranslations(parseAllowDest(text)));
    this.fixed = [...this.serverPools.map((p) => range(p, 'server-pool')), ...ALWAYS, ...(opts.allowLan ? [] : LAN)].flatMap(translated);
    this.allowed = allowed;
  }

  /** The addresses the host holds now, on any interface (host-addresses.ts keeps them current). */
  setHostAddresses(addresses: readonly string[]): void {
    this.host = addresses.map((a) => range(a, 'host')).flatMap(translated);
  }

  private get refused(): Range[] {
    return [...this.fixed, ...this.host];
  }

  /**
   * The policy as prefixes, in the order check() applies them: `allowed` wins over `refused`.
   * The kernel NAT turns these into its nftables rules, so both NATs share this one definition.
   */
  prefixes(): { allowed: Cidr[]; refused: { cidr: Cidr; reason: RefusalReason }[] } {
    return { allowed: [...this.allowed], refused: this.refused.map((r) => ({ ...r })) };
  }

  /** Null when `address` may be reached, else the reason it may not. */
  check(address: string): RefusalReason | null {
    if (isIP(address) === 0) return 'unspecified';
    const addr = parseCidr(address).address;
    if (this.allowed.some((c) => contains(c, addr))) return null;
    return this.refused.find((r) => contains(r.cidr, addr))?.reason ?? null;
  }
}

/** An --allow-dest value, or an error naming it. */
export function parseAllowDest(text: string): Cidr {
  try {
    return parseCidr(text.trim());
  } catch (err) {
    throw new Error(`--allow-dest "${text}" is not an address or CIDR such as 192.168.1.0/24 or fd00::/64: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
