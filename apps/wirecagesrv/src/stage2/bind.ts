// Stage 1 binds the server's public sockets in the host network namespace
// with the caller's privileges (a port below 1024 works when run as root)
// and hands the fds to stage 2, which could not bind them from its user
// namespace.
import { closeSync } from 'node:fs';
import { bindSocket, listenSocket, socketInNetns } from '@wirecage/netns';
import { formatListen, type ListenAddress } from '../listen.js';

export interface BoundSockets {
  api: number;
  udp4: number | null;
  udp6: number | null;
}

function bound(
  family: 4 | 6,
  type: 'tcp' | 'udp',
  host: string,
  port: number,
  opts: { ipv6Only?: boolean; reuseAddr?: boolean } = {},
): number {
  const fd = socketInNetns(null, family, type, opts);
  try {
    bindSocket(fd, host, port);
    if (type === 'tcp') listenSocket(fd, 511);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::';

/**
 * The WireGuard UDP socket: a wildcard listens on both families with one
 * dual-stack IPv6 socket (IPv4 alone when the host has no IPv6), an address
 * on its own. One socket, so the data plane's pumps serve every peer.
 */
export function bindWireGuard(at: ListenAddress): { udp4: number | null; udp6: number | null } {
  const what = `WireGuard cannot listen on udp ${formatListen(at)}`;
  try {
    if (!isWildcard(at.host)) {
      const v6 = at.host.includes(':');
      const fd = bound(v6 ? 6 : 4, 'udp', at.host, at.port);
      return v6 ? { udp4: null, udp6: fd } : { udp4: fd, udp6: null };
    }
    try {
      return { udp4: null, udp6: bound(6, 'udp', '::', at.port, { ipv6Only: false }) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
      return { udp4: bound(4, 'udp', '0.0.0.0', at.port), udp6: null };
    }
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** The API's listening TCP socket; "::" takes both families, as Node's own listen does. */
export function bindApi(at: ListenAddress): number {
  try {
    return bound(at.host.includes(':') ? 6 : 4, 'tcp', at.host, at.port, { reuseAddr: true, ipv6Only: false });
  } catch (err) {
    throw new Error(`the API cannot listen on ${at.host} port ${at.port}: ${(err as Error).message}`, { cause: err });
  }
}

export function closeBound(s: Partial<BoundSockets>): void {
  for (const fd of [s.api, s.udp4, s.udp6]) if (fd !== undefined && fd !== null) closeSync(fd);
}

/** Both public sockets, or neither: the WireGuard one is closed again when the API's cannot be bound. */
export function bindServerSockets(wg: ListenAddress, api: ListenAddress): BoundSockets {
  const udp = bindWireGuard(wg);
  try {
    return { ...udp, api: bindApi(api) };
  } catch (err) {
    closeBound(udp);
    throw err;
  }
}
