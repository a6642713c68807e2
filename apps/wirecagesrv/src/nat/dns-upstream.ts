// Where the DNS forwarder sends the peers' queries: --dns-upstream, or the
// host's own resolvers from /etc/resolv.conf. Stage 2 lives in the host's
// network namespace, so a local stub such as systemd-resolved's 127.0.0.53
// is as reachable for it as for any program on the host, and is kept.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface DnsUpstream {
  address: string;
  port: number;
}

export const RESOLV_CONF = '/etc/resolv.conf';

/** "IP", "IP:PORT", "IPv6" or "[IPv6]:PORT"; the port defaults to 53. */
export function parseDnsUpstream(text: string, what = '--dns-upstream'): DnsUpstream {
  const t = text.trim();
  const bad = () => new Error(`${what} "${text}": expected IP[:PORT], an IPv6 address with a port in brackets ([fd00::1]:53)`);
  let address = t;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracketed) {
    address = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
    if (isIP(address) !== 6) throw bad();
  } else if (isIP(t) === 0) {
    const m = /^([^:]+):(\d+)$/.exec(t);
    if (!m || isIP(m[1]!) !== 4) throw bad();
    address = m[1]!;
    port = Number(m[2]);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${what} "${text}": the port must be 1-65535`);
  return { address, port };
}

export function formatDnsUpstream(u: DnsUpstream): string {
  return u.address.includes(':') ? `[${u.address}]:${u.port}` : `${u.address}:${u.port}`;
}

/** The `nameserver` lines of a resolv.conf, in order; anything that is not an IP address is skipped, as glibc does. */
export function resolvConfNameservers(text: string): DnsUpstream[] {
  const out: DnsUpstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    // A link-local IPv6 server may carry its zone (fe80::1%eth0); the zone stays with the address.
    const address = m[1]!;
    if (isIP(address.split('%')[0]!) !== 0) out.push({ address, port: 53 });
  }
  return out;
}

/**
 * The host's resolvers. A resolv.conf without nameserver lines means 127.0.0.1 to
 * glibc, and so it does here; an unreadable one is an error naming the file.
 */
export function hostDnsUpstreams(path = RESOLV_CONF): DnsUpstream[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read ${path} for the DNS forwarder's upstream resolvers (give --dns-upstream IP instead): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const found = resolvConfNameservers(text);
  return found.length > 0 ? found : [{ address: '127.0.0.1', port: 53 }];
}
