import { native } from './native.js';

export interface IcmpSocketOptions {
  /**
   * false (default): a ping socket (SOCK_DGRAM), open to groups in net.ipv4.ping_group_range; it sends
   * and receives echo messages only, and the kernel owns the identifier and the checksum.
   * true: a raw ICMP socket, needing CAP_NET_RAW in the user namespace that owns the network namespace.
   */
  raw?: boolean;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: icmpSend() may use a source address the namespace does not own. */
  transparent?: boolean;
  /** IP_RECVERR / IPV6_RECVERR: ICMP errors about sent messages are queued for recvSocketError() (sockets.ts). */
  recvErr?: boolean;
  /** Raw sockets: the ICMP types to receive (ICMP_FILTER, types 0-31 on IPv4; ICMP6_FILTER); default every type. */
  acceptTypes?: number[];
}

export interface IcmpMessage {
  /** Bytes written into the buffer. A raw IPv4 socket includes the IP header; IPv6 and ping sockets do not. */
  length: number;
  /** The message was longer than the buffer and was cut. */
  truncated: boolean;
  source: string;
  /** The address it was sent to (IP_PKTINFO / IPV6_PKTINFO). */
  destination: string | null;
  /** Its TTL or hop limit on arrival. */
  ttl: number | null;
}

/**
 * Opens an ICMP socket (ICMPv6 for family 6) inside the network namespace `netnsFd`
 * refers to, or with null in this process's own: non-blocking, close-on-exec, with
 * the destination and TTL of received messages reported. A throwaway thread enters
 * the namespace, as socketInNetns() does. Throws a NetnsError ('socket' with EACCES
 * when ping_group_range leaves this process's group out, EPERM without CAP_NET_RAW).
 */
export function icmpSocketInNetns(netnsFd: number | null, family: 4 | 6, options: IcmpSocketOptions = {}): number {
  if (family !== 4 && family !== 6) throw new TypeError(`family must be 4 or 6, not ${String(family)}`);
  return native.icmpOpen(netnsFd, family, options);
}

/** One recvmsg(2); null when nothing is waiting (never blocks). */
export function icmpReceive(fd: number, buffer: Buffer): IcmpMessage | null {
  return native.icmpRecv(fd, buffer);
}

/**
 * One sendmsg(2) of `message` (from its ICMP header on) to `destination`, from `source`
 * (IP_PKTINFO / IPV6_PKTINFO; another host's address needs a transparent socket) with
 * `ttl` as its TTL or hop limit. False when the socket's buffer is full (nothing sent).
 * The kernel fills in the ICMPv6 checksum, and on a ping socket the identifier and the
 * ICMP checksum; a raw IPv4 socket sends the ICMP checksum as given.
 */
export function icmpSend(fd: number, message: Uint8Array, destination: string, options: { source?: string; ttl?: number } = {}): boolean {
  return native.icmpSend(fd, message, destination, options.source ?? null, options.ttl ?? null);
}
