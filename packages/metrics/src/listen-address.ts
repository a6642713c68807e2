// Where the metrics server listens, written as Prometheus exporters take it:
// "host:port", "[IPv6]:port", or ":port" for every local address.
import { parseHostPort } from '@wirecage/wg-engine/config';

export interface ListenAddress {
  /** undefined: every local address (IPv6 and IPv4 where the system allows both). */
  host: string | undefined;
  /** 0 picks a free port (see MetricsServer.address for the one chosen). */
  port: number;
}

/** Throws a HostPortError (@wirecage/wg-engine) naming the text and what is wrong with it. */
export function parseListenAddress(text: string): ListenAddress {
  return parseHostPort(text, { what: 'metrics address', names: true, anyHost: true, portZero: true });
}
