// The egress policy: which destinations a peer's flows may reach from the
// server's host network. Without it a peer could reach what only the server
// should: its loopback services, the cloud metadata endpoint (169.254.169.254),
// the private network it sits in, and the other peers through the server.
import { isIP } from 'node:net';
import { parseCidr, type Cidr } from '@wirecage/wg-engine';

/** Why a destination is refused; null when it is allowed. */
export type RefusalReason = 'loopback' | 'link-local' | 'private' | 'multicast' | 'broadcast' | 'unspecified' | 'reserved' | 'server-pool';

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
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('fe80::/10', 'link-local'),
  range('ff00::/8', 'multicast'),
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

const MAPPED_V4 = parseCidr('::ffff:0:0/96');

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
  private readonly refused: Range[];
  private readonly allowed: Cidr[];

  constructor(opts: EgressPolicyOptions = {}) {
    this.allowed = (opts.allowDest ?? []).map((text) => parseAllowDest(text));
    this.refused = [
      ...(opts.serverPools ?? []).map((p) => range(p, 'server-pool')),
      ...ALWAYS,
      ...(opts.allowLan ? [] : LAN),
    ];
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
    const family = isIP(address);
    if (family === 0) return 'unspecified';
    let addr = parseCidr(address).address;
    // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 address it carries: judge that one.
    if (family === 6 && contains(MAPPED_V4, addr)) addr = addr.subarray(12);
    if (this.allowed.some((c) => contains(c, addr))) return null;
    return this.refused.find((r) => contains(r.cidr, addr))?.reason ?? null;
  }
}

/** An --allow-dest value, or an error naming it. */
export function parseAllowDest(text: string): Cidr {
  try {
    return parseCidr(text.trim());
  } catch (err) {
    throw new Error(`--allow-dest "${text}" is not an address or CIDR such as 192.168.1.0/24 or fd00::/64: ${(err as Error).message}`);
  }
}
