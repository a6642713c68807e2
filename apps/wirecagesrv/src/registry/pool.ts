// The address pool: which tunnel addresses the server owns and which it may
// hand out. One host index numbers a peer in both families (index 2 is
// 10.200.100.2 and fd..::2), so a peer's two addresses always belong together
// and one allocation covers both.
import { formatIp, parseCidr, type Cidr } from '@wirecage/wg-engine';
import { randomBytes } from 'node:crypto';

/** The server's own host index: the first host address of each subnet. */
export const SERVER_INDEX = 1;
/** The first index a peer can get. */
export const FIRST_PEER_INDEX = 2;

export class PoolError extends Error {
  override name = 'PoolError';
}

export interface Subnet {
  cidr: Cidr;
  /** As given back to users: "10.200.100.0/24". */
  text: string;
}

export function parseSubnet(text: string, family: 4 | 6, what: string): Subnet {
  let cidr: Cidr;
  try {
    cidr = parseCidr(text, { family, requirePrefix: true });
  } catch (err) {
    throw new PoolError(`${what}: ${(err as Error).message}`);
  }
  const max = family === 4 ? 30 : 126;
  if (cidr.prefix > max) {
    throw new PoolError(`${what}: "${text}" is too small; the server and at least one peer need /${max} or larger`);
  }
  return { cidr, text: `${formatIp(cidr.address)}/${cidr.prefix}` };
}

/** A random RFC 4193 unique local /64: fd + 40 random bits + subnet 0. */
export function generateUla64(): string {
  const a = Buffer.alloc(16);
  a[0] = 0xfd;
  randomBytes(5).copy(a, 1);
  return `${formatIp(a)}/64`;
}

function toBigInt(address: Uint8Array): bigint {
  let v = 0n;
  for (const b of address) v = (v << 8n) | BigInt(b);
  return v;
}

function fromBigInt(v: bigint, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export class AddressPool {
  /** The highest index a peer may get: below the IPv4 broadcast and inside the IPv6 prefix. */
  readonly lastIndex: number;

  constructor(
    readonly subnet4: Subnet,
    readonly subnet6: Subnet,
  ) {
    const size4 = 1n << BigInt(32 - subnet4.cidr.prefix);
    const size6 = 1n << BigInt(128 - subnet6.cidr.prefix);
    // IPv4 loses the broadcast address (size4 - 1); IPv6 has none, but both start at the same index.
    let last = size4 - 2n;
    if (size6 - 1n < last) last = size6 - 1n;
    this.lastIndex = Number(last > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : last);
  }

  /** How many peers fit. */
  get capacity(): number {
    return this.lastIndex - FIRST_PEER_INDEX + 1;
  }

  address4(index: number): string {
    return formatIp(fromBigInt(toBigInt(this.subnet4.cidr.address) + BigInt(index), 4));
  }

  address6(index: number): string {
    return formatIp(fromBigInt(toBigInt(this.subnet6.cidr.address) + BigInt(index), 16));
  }

  get server4(): string {
    return this.address4(SERVER_INDEX);
  }

  get server6(): string {
    return this.address6(SERVER_INDEX);
  }
}
