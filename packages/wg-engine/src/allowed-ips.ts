// Cryptokey routing (whitepaper 2): a longest-prefix-match table from IP
// prefixes to peers. Outgoing packets pick their peer by destination;
// decrypted packets must come from a source whose longest-prefix owner is the
// peer that sent them.
//
// One path-compressed binary trie per family, the shape the Linux kernel
// uses: a node stands for a prefix (bits, cidr); its two children branch on
// the bit at position cidr and may skip any number of bits below it. Nodes
// without an owner exist only where two subtrees fork, so a lookup visits at
// most one node per distinct prefix length on its path. Addresses are held as
// big-endian 32-bit words (one for IPv4, four for IPv6) so that matching a
// node is a mask-and-compare per word, and a lookup allocates nothing.
import { type Cidr, type IpFamily } from './ip.js';

export { formatCidr, formatIp, parseCidr, parseIp, type Cidr, type IpFamily, type ParseCidrOptions } from './ip.js';

class TrieNode<T> {
  /** The prefix, host bits cleared, as signed 32-bit words (what `&` yields). */
  b0 = 0;
  b1 = 0;
  b2 = 0;
  b3 = 0;
  /** Masks of the first cidr bits, per word. */
  m0 = 0;
  m1 = 0;
  m2 = 0;
  m3 = 0;
  child0: TrieNode<T> | null = null;
  child1: TrieNode<T> | null = null;
  parent: TrieNode<T> | null = null;

  constructor(
    readonly family: IpFamily,
    readonly cidr: number,
    words: Int32Array,
    public value: T | undefined,
  ) {
    this.m0 = maskWord(cidr, 0);
    this.m1 = maskWord(cidr, 1);
    this.m2 = maskWord(cidr, 2);
    this.m3 = maskWord(cidr, 3);
    this.b0 = words[0]! & this.m0;
    this.b1 = words[1]! & this.m1;
    this.b2 = words[2]! & this.m2;
    this.b3 = words[3]! & this.m3;
  }

  word(i: number): number {
    return i === 0 ? this.b0 : i === 1 ? this.b1 : i === 2 ? this.b2 : this.b3;
  }

  matches(k: Int32Array): boolean {
    return (k[0]! & this.m0) === this.b0 && (k[1]! & this.m1) === this.b1 && (k[2]! & this.m2) === this.b2 && (k[3]! & this.m3) === this.b3;
  }

  toCidr(): Cidr {
    const address = Buffer.alloc(this.family === 4 ? 4 : 16);
    for (let i = 0; i < address.length / 4; i++) address.writeInt32BE(this.word(i), i * 4);
    return { family: this.family, address, prefix: this.cidr };
  }
}

/** The mask of the first cidr bits that fall into 32-bit word i. */
function maskWord(cidr: number, i: number): number {
  const bits = cidr - i * 32;
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return -1 << (32 - bits);
}

/** Bit number pos (0 = most significant) of a key. */
function bitOf(k: Int32Array, pos: number): number {
  return (k[pos >>> 5]! >>> (31 - (pos & 31))) & 1;
}

/** How many leading bits two keys share, up to limit. */
function commonBits(n: TrieNode<unknown>, k: Int32Array, limit: number): number {
  for (let i = 0; i * 32 < limit; i++) {
    const diff = n.word(i) ^ k[i]!;
    if (diff !== 0) return Math.min(limit, i * 32 + Math.clz32(diff));
  }
  return limit;
}

export class AllowedIps<T> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  /** Each owner's prefixes in the order it was given them (a Set iterates in insertion order). */
  private owned = new Map<T, Set<TrieNode<T>>>();
  private count = 0;
  /** Scratch for the key of insert/remove, which run on configuration changes only. */
  private readonly key = new Int32Array(4);

  /** How many prefixes have an owner. */
  get size(): number {
    return this.count;
  }

  /** Gives the prefix to value; a prefix owned by another value moves to it, as `wg set` does. */
  insert(cidr: Cidr, value: T): void {
    if (value === undefined) throw new Error('an allowed IP needs an owner; undefined cannot own one');
    const k = this.loadKey(cidr);
    const bits = cidr.prefix;
    let parent: TrieNode<T> | null = null;
    let n = this.root(cidr.family);
    while (n !== null && n.cidr <= bits && n.matches(k)) {
      if (n.cidr === bits) {
        this.own(n, value);
        return;
      }
      parent = n;
      n = bitOf(k, n.cidr) ? n.child1 : n.child0;
    }
    const leaf = new TrieNode<T>(cidr.family, bits, k, undefined);
    this.own(leaf, value);
    if (n === null) {
      this.link(parent, leaf, cidr.family, parent !== null && bitOf(k, parent.cidr) === 1);
      return;
    }
    // n sits where the new prefix belongs but does not lie inside it as a whole:
    // either the new prefix covers n, or the two fork at their first differing bit.
    const fork = commonBits(n, k, Math.min(bits, n.cidr));
    if (fork === bits) {
      this.replace(n, leaf);
      this.link(leaf, n, cidr.family, ((n.word(bits >>> 5) >>> (31 - (bits & 31))) & 1) === 1);
      return;
    }
    const mid = new TrieNode<T>(cidr.family, fork, k, undefined);
    this.replace(n, mid);
    const leafRight = bitOf(k, fork) === 1;
    this.link(mid, leaf, cidr.family, leafRight);
    this.link(mid, n, cidr.family, !leafRight);
  }

  /** Removes the prefix if value owns it; true if it did. */
  remove(cidr: Cidr, value: T): boolean {
    const n = this.find(cidr);
    if (n === null || n.value !== value || value === undefined) return false;
    this.disown(n);
    return true;
  }

  /** Removes every prefix value owns. */
  removeByValue(value: T): void {
    const nodes = this.owned.get(value);
    if (!nodes) return;
    for (const n of [...nodes]) this.disown(n);
  }

  /**
   * The owner of the longest prefix containing the address at bytes[offset..]
   * (4 bytes for IPv4, 16 for IPv6, network order): per packet, allocation-free.
   */
  lookup(family: IpFamily, bytes: Uint8Array, offset = 0): T | undefined {
    const o = offset;
    const k0 = (bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!;
    if (family === 4) {
      let n = this.root4;
      let best: T | undefined;
      while (n !== null && (k0 & n.m0) === n.b0) {
        if (n.value !== undefined) best = n.value;
        if (n.cidr === 32) break;
        n = (k0 >>> (31 - n.cidr)) & 1 ? n.child1 : n.child0;
      }
      return best;
    }
    const k1 = (bytes[o + 4]! << 24) | (bytes[o + 5]! << 16) | (bytes[o + 6]! << 8) | bytes[o + 7]!;
    const k2 = (bytes[o + 8]! << 24) | (bytes[o + 9]! << 16) | (bytes[o + 10]! << 8) | bytes[o + 11]!;
    const k3 = (bytes[o + 12]! << 24) | (bytes[o + 13]! << 16) | (bytes[o + 14]! << 8) | bytes[o + 15]!;
    let n = this.root6;
    let best: T | undefined;
    while (n !== null && (k0 & n.m0) === n.b0 && (k1 & n.m1) === n.b1 && (k2 & n.m2) === n.b2 && (k3 & n.m3) === n.b3) {
      if (n.value !== undefined) best = n.value;
      const c = n.cidr;
      if (c === 128) break;
      const w = c < 64 ? (c < 32 ? k0 : k1) : c < 96 ? k2 : k3;
      n = (w >>> (31 - (c & 31))) & 1 ? n.child1 : n.child0;
    }
    return best;
  }

  /** The prefixes value owns, in the order it was given them (as the kernel lists them to `wg show`). */
  entriesFor(value: T): Cidr[] {
    const nodes = this.owned.get(value);
    return nodes ? [...nodes].map((n) => n.toCidr()) : [];
  }

  clear(): void {
    this.root4 = null;
    this.root6 = null;
    this.owned.clear();
    this.count = 0;
  }

  private root(family: IpFamily): TrieNode<T> | null {
    return family === 4 ? this.root4 : this.root6;
  }

  private loadKey(cidr: Cidr): Int32Array {
    const len = cidr.family === 4 ? 4 : cidr.family === 6 ? 16 : 0;
    if (len === 0 || cidr.address.length !== len) {
      throw new Error(`a prefix of family ${String(cidr.family)} has a ${cidr.address.length}-byte address; IPv4 needs 4 bytes, IPv6 16`);
    }
    if (!Number.isInteger(cidr.prefix) || cidr.prefix < 0 || cidr.prefix > len * 8) {
      throw new Error(`prefix length ${cidr.prefix} is outside 0-${len * 8} for IPv${cidr.family}`);
    }
    const k = this.key;
    k.fill(0);
    for (let i = 0; i < len / 4; i++) k[i] = cidr.address.readInt32BE(i * 4) & maskWord(cidr.prefix, i);
    return k;
  }

  /** The node of exactly this prefix, owned or not. */
  private find(cidr: Cidr): TrieNode<T> | null {
    const k = this.loadKey(cidr);
    let n = this.root(cidr.family);
    while (n !== null && n.cidr <= cidr.prefix && n.matches(k)) {
      if (n.cidr === cidr.prefix) return n;
      n = bitOf(k, n.cidr) ? n.child1 : n.child0;
    }
    return null;
  }

  private own(n: TrieNode<T>, value: T): void {
    if (n.value === undefined) this.count++;
    // Also when value already owns n: re-giving a prefix moves it to the end of the list, as in the kernel.
    else this.owned.get(n.value)?.delete(n);
    n.value = value;
    let set = this.owned.get(value);
    if (!set) this.owned.set(value, (set = new Set()));
    set.add(n);
  }

  /** Drops n's owner and the nodes that no longer fork anything. */
  private disown(n: TrieNode<T>): void {
    const set = this.owned.get(n.value as T);
    set?.delete(n);
    if (set?.size === 0) this.owned.delete(n.value as T);
    n.value = undefined;
    this.count--;
    if (n.child0 !== null && n.child1 !== null) return; // still a fork
    const only = n.child0 ?? n.child1;
    const parent = n.parent;
    this.replace(n, only);
    // An ownerless parent was a fork of two; having lost a leaf, it forks nothing.
    if (only === null && parent !== null && parent.value === undefined) this.replace(parent, parent.child0 ?? parent.child1);
  }

  private link(parent: TrieNode<T> | null, child: TrieNode<T>, family: IpFamily, right: boolean): void {
    child.parent = parent;
    if (parent === null) {
      if (family === 4) this.root4 = child;
      else this.root6 = child;
    } else if (right) parent.child1 = child;
    else parent.child0 = child;
  }

  /** Puts next (or nothing) where old hangs. */
  private replace(old: TrieNode<T>, next: TrieNode<T> | null): void {
    const p = old.parent;
    old.parent = null;
    if (next !== null) next.parent = p;
    if (p === null) {
      if (old.family === 4) this.root4 = next;
      else this.root6 = next;
    } else if (p.child0 === old) p.child0 = next;
    else p.child1 = next;
  }
}
