// Where the metrics server listens, written as Prometheus exporters take it:
// "host:port", "[IPv6]:port", or ":port" for every local address.
import { isIPv6 } from 'node:net';

export interface ListenAddress {
  /** undefined: every local address (IPv6 and IPv4 where the system allows both). */
  host: string | undefined;
  /** 0 picks a free port (see MetricsServer.address for the one chosen). */
  port: number;
}

export class ListenAddressError extends Error {
  override name = 'ListenAddressError';
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

export function parseListenAddress(text: string): ListenAddress {
  const fail = (why: string) => new ListenAddressError(`metrics address "${text}": ${why}`);
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw fail('expected host:port, [IPv6]:port or :port');
  const hostPart = text.slice(0, colon);
  const portPart = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portPart) || Number(portPart) > 65535) throw fail(`port "${portPart}" is not a number from 0 to 65535`);
  const port = Number(portPart);

  if (hostPart === '') return { host: undefined, port };
  if (hostPart.startsWith('[') && hostPart.endsWith(']')) {
    const host = hostPart.slice(1, -1);
    if (!isIPv6(host)) throw fail(`"${host}" is not an IPv6 address`);
    return { host, port };
  }
  if (hostPart.includes(':')) throw fail('write an IPv6 address in brackets, as [::1]:9586');
  if (!HOST_NAME.test(hostPart)) throw fail(`"${hostPart}" is not an IPv4 address or host name`);
  return { host: hostPart, port };
}

export function formatListenAddress(addr: ListenAddress): string {
  if (addr.host === undefined) return `:${addr.port}`;
  return isIPv6(addr.host) ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}
