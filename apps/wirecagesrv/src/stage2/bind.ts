// Stage 1 binds the server's public sockets in the host network namespace
// with the caller's privileges (a port below 1024 works when run as root)
// and hands the fds to stage 2, which could not bind them from its user
// namespace.
import { closeSync } from 'node:fs';
import { bindSocket, listenSocket, socketAddress, socketInNetns } from '@wirecage/netns';
import { formatListen, type ListenAddress } from '../listen.js';

export interface BoundSockets {
  api: number;
  /** The WireGuard port's sockets: one per data-plane shard, in one SO_REUSEPORT group when several. */
  wg: number[];
}

function bound(
  family: 4 | 6,
  type: 'tcp' | 'udp',
  host: string,
  port: number,
  opts: { ipv6Only?: boolean; reuseAddr?: boolean; reusePort?: boolean } = {},
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

/** The data plane's shards, one socket each (workers 0: the one shard on the main thread). */
export const wireGuardSocketCount = (workers: number): number => Math.max(workers, 1);

/**
 * The WireGuard UDP sockets, `count` of them on one port: a wildcard listens on both families with
 * dual-stack IPv6 sockets (IPv4 alone when the host has no IPv6), an address on its own. Several
 * form one SO_REUSEPORT group, each shard reading its own and the kernel keeping a peer on one; the
 * kernel lets only sockets of the same user join, so another user's process cannot take a share of
 * the peers' packets. A single socket is bound without SO_REUSEPORT, as no one is to join it.
 */
export function bindWireGuard(at: ListenAddress, count = 1): number[] {
  const what = `WireGuard cannot listen on udp ${formatListen(at)}`;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`${what}: the socket count must be a positive integer, got ${count}`);
  const reusePort = count > 1;
  const group: number[] = [];
  try {
    // The first socket decides the family (a wildcard falls back to IPv4) and the port (0: the
    // kernel's pick); the rest join it there.
    let family: 4 | 6 = at.host.includes(':') ? 6 : 4;
    let host = at.host;
    // A wildcard's IPv6 sockets take IPv4 too (ignored for an IPv4 socket).
    const opts = { reusePort, ...(isWildcard(at.host) && { ipv6Only: false }) };
    const open = (port: number) => bound(family, 'udp', host, port, opts);
    if (!isWildcard(at.host)) group.push(open(at.port));
    else {
      [family, host] = [6, '::'];
      try {
        group.push(open(at.port));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
        [family, host] = [4, '0.0.0.0'];
        group.push(open(at.port));
      }
    }
    const port = socketAddress(group[0]!).port;
    while (group.length < count) group.push(open(port));
    return group;
  } catch (err) {
    for (const fd of group) closeSync(fd);
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
  for (const fd of [s.api, ...(s.wg ?? [])]) if (fd !== undefined) closeSync(fd);
}

/** Both public sockets, or neither: the WireGuard ones are closed again when the API's cannot be bound. */
export function bindServerSockets(wg: ListenAddress, api: ListenAddress, wgSockets = 1): BoundSockets {
  const group = bindWireGuard(wg, wgSockets);
  try {
    return { wg: group, api: bindApi(api) };
  } catch (err) {
    closeBound({ wg: group });
    throw err;
  }
}
