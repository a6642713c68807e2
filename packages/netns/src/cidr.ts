import { isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefixLen: number;
  family: 4 | 6;
}

/** Parses "10.0.0.2/24", "fd00::2/64", or a bare address (a host prefix: /32 or /128). */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) throw new TypeError(`not an IP address or CIDR: ${JSON.stringify(text)}`);
  const max = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefixLen = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefixLen >= 0 && prefixLen <= max)) throw new TypeError(`bad prefix length in ${JSON.stringify(text)} (0..${max})`);
  return { address, prefixLen, family };
}
