// Cryptokey routing (whitepaper 2): a longest-prefix-match table from IP
// prefixes to peers, one binary trie per address family. Outgoing packets
// pick their peer by destination; decrypted packets must come from a source
// whose longest-prefix owner is the peer that sent them.
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface Cidr {
  family: IpFamily;
  /** 4 or 16 bytes, host bits cleared. */
  address: Buffer;
  prefix: number;
}

function parseIpv4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

function parseIpv6(text: string): Buffer {
  let t = text;
  const out = Buffer.alloc(16);
  // An embedded dotted quad (::ffff:1.2.3.4) becomes the last two groups.
  const dot = t.lastIndexOf(':');
  if (t.includes('.')) {
    const v4 = parseIpv4(t.slice(dot + 1));
    t = `${t.slice(0, dot + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = t.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  h.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  tl.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 16 - (tl.length - i) * 2));
  return out;
}

/** Parses "10.0.0.0/8", "fd00::/64", or a bare address (a host prefix). Host bits are cleared. */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addr = slash < 0 ? t : t.slice(0, slash);
  let family: IpFamily;
  let address: Buffer;
  if (isIPv4(addr)) {
    family = 4;
    address = parseIpv4(addr);
  } else if (isIPv6(addr)) {
    family = 6;
    address = parseIpv6(addr);
  } else {
    throw new Error(`"${text}" is not an IP address or prefix`);
  }
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new Error(`"${text}" has prefix length "${p}"; IPv${family} allows 0-${max}`);
    prefix = Number(p);
  }
  return { family, address: maskAddress(address, prefix), prefix };
}

function maskAddress(address: Buffer, prefix: number): Buffer {
  const out = Buffer.from(address);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i]! &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** "10.0.0.0/8", "fd00::/64" (IPv6 compressed as `wg` prints it). */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.address)}/${c.prefix}`;
}

export function formatIp(address: Uint8Array): string {
  if (address.length === 4) return Array.from(address).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((address[i]! << 8) | address[i + 1]!);
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

interface TrieNode<T> {
  child: [TrieNode<T> | null, TrieNode<T> | null];
  value: T | undefined;
  /** Insertion order of this prefix, for stable listing. */
  seq: number;
}

function node<T>(): TrieNode<T> {
  return { child: [null, null], value: undefined, seq: 0 };
}

export class AllowedIps<T> {
  private roots: Record<IpFamily, TrieNode<T>> = { 4: node<T>(), 6: node<T>() };
  private count = 0;
  private seq = 0;

  get size(): number {
    return this.count;
  }

  /** Gives the prefix to value; a prefix owned by another value moves, as `wg set` does. */
  insert(cidr: Cidr, value: T): void {
    let n = this.roots[cidr.family];
    for (let i = 0; i < cidr.prefix; i++) {
      const bit = (cidr.address[i >> 3]! >> (7 - (i & 7))) & 1;
      n = n.child[bit] ??= node<T>();
    }
    if (n.value === undefined) this.count++;
    if (n.value !== value) n.seq = ++this.seq;
    n.value = value;
  }

  /** Removes the prefix if value owns it. */
  remove(cidr: Cidr, value: T): boolean {
    const path: TrieNode<T>[] = [];
    let n: TrieNode<T> | null = this.roots[cidr.family];
    for (let i = 0; i < cidr.prefix && n; i++) {
      path.push(n);
      n = n.child[(cidr.address[i >> 3]! >> (7 - (i & 7))) & 1];
    }
    if (!n || n.value !== value) return false;
    n.value = undefined;
    this.count--;
    this.prune(path, n, cidr);
    return true;
  }

  removeByValue(value: T): void {
    for (const c of this.entriesFor(value)) this.remove(c, value);
  }

  /** The owner of the longest prefix containing the address at bytes[offset..]. Allocation-free. */
  lookup(family: IpFamily, bytes: Uint8Array, offset = 0): T | undefined {
    let n: TrieNode<T> | null = this.roots[family];
    let best = n.value;
    const bitsTotal = family === 4 ? 32 : 128;
    for (let i = 0; i < bitsTotal; i++) {
      n = n.child[(bytes[offset + (i >> 3)]! >> (7 - (i & 7))) & 1]!;
      if (!n) break;
      if (n.value !== undefined) best = n.value;
    }
    return best;
  }

  /** The prefixes value owns, in the order they were given to it. */
  entriesFor(value: T): Cidr[] {
    const out: { c: Cidr; seq: number }[] = [];
    for (const family of [4, 6] as const) {
      const len = family === 4 ? 4 : 16;
      const walk = (n: TrieNode<T>, depth: number, addr: Buffer) => {
        if (n.value === value) out.push({ c: { family, address: Buffer.from(addr), prefix: depth }, seq: n.seq });
        for (const bit of [0, 1] as const) {
          const ch = n.child[bit];
          if (!ch) continue;
          if (bit) addr[depth >> 3]! |= 0x80 >> (depth & 7);
          walk(ch, depth + 1, addr);
          if (bit) addr[depth >> 3]! &= ~(0x80 >> (depth & 7));
        }
      };
      walk(this.roots[family], 0, Buffer.alloc(len));
    }
    return out.sort((a, b) => a.seq - b.seq).map((e) => e.c);
  }

  clear(): void {
    this.roots = { 4: node<T>(), 6: node<T>() };
    this.count = 0;
  }

  private prune(path: TrieNode<T>[], leaf: TrieNode<T>, cidr: Cidr): void {
    let n = leaf;
    for (let i = path.length - 1; i >= 0; i--) {
      if (n.value !== undefined || n.child[0] || n.child[1]) return;
      const parent = path[i]!;
      parent.child[(cidr.address[i >> 3]! >> (7 - (i & 7))) & 1] = null;
      n = parent;
    }
  }
}
