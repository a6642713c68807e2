// One spelling per address, so that a socket's remote address, a parsed
// packet's and the registry's compare equal (IPv4-mapped IPv6 included).
import { formatIp, parseIp } from '@wirecage/wg-engine';

export function canonicalAddress(text: string): string {
  const ip = parseIp(text.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, ''));
  return ip ? formatIp(ip.address) : text;
}
