import { getSystemErrorMap } from 'node:util';
import { NetnsError } from './errors.js';
import { native } from './native.js';

export interface NetnsSocketOptions {
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: bind to a non-local address, accept tproxy'd flows (needs CAP_NET_ADMIN in the namespace's owner). */
  transparent?: boolean;
  /** SO_REUSEADDR (what Node sets on TCP listeners). */
  reuseAddr?: boolean;
  /** SO_REUSEPORT. */
  reusePort?: boolean;
  /** IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR, for recvWithOrigDst() on a transparent UDP socket. */
  origDstAddr?: boolean;
  /** IPV6_V6ONLY on an IPv6 socket. Default true: one socket per family; false makes a [::] listener dual-stack. */
  ipv6Only?: boolean;
  /**
   * IP_RECVERR / IPV6_RECVERR: every ICMP error about the socket's datagrams is queued for recvSocketError().
   * The socket then polls readable while its error queue holds anything: drain it on each readable event.
   */
  recvErr?: boolean;
}

/**
 * Opens a TCP or UDP socket inside the network namespace `netnsFd` refers to
 * (or, with null, in this process's own) and returns its fd: non-blocking and
 * close-on-exec, nothing bound yet. A throwaway thread enters the namespace,
 * makes the socket and sets the options; no Node thread moves, and the socket
 * stays in that namespace for life, so bind/listen/connect/send work from
 * anywhere afterwards.
 *
 * Hand the fd to Node with `net.Server.listen({ fd })` (TCP, after
 * bindSocket + listenSocket), `new net.Socket({ fd })`, or
 * `dgram.Socket.bind({ fd })` (UDP; only in a process that did not already
 * poll that fd). Throws a NetnsError ('setns', 'socket', 'setsockopt(...)').
 */
export function socketInNetns(netnsFd: number | null, family: 4 | 6, type: 'tcp' | 'udp', options: NetnsSocketOptions = {}): number {
  if (family !== 4 && family !== 6) throw new TypeError(`family must be 4 or 6, not ${String(family)}`);
  return native.socketOpen(netnsFd, family, type, options);
}

/** bind(2); with a transparent socket the address may be one the namespace does not own. */
export function bindSocket(fd: number, address: string, port: number): void {
  native.socketBind(fd, address, port);
}

/** listen(2). */
export function listenSocket(fd: number, backlog = 511): void {
  native.socketListen(fd, backlog);
}

/** getsockname(2): the bound address and port (the port the kernel picked for port 0). */
export function socketAddress(fd: number): { address: string; port: number } {
  return native.socketName(fd);
}

/** connect(2) of a datagram socket (completes at once); afterwards sendOnSocket() sends there. */
export function connectSocket(fd: number, address: string, port: number): void {
  native.socketConnect(fd, address, port);
}

/**
 * One send(2) on a connected socket; false when its buffer is full (nothing sent). Throws a
 * NetnsError ('send'); on a socket opened with recvErr, also with a pending ICMP error's errno
 * (ECONNREFUSED, EHOSTUNREACH, ...), which that throw clears.
 */
export function sendOnSocket(fd: number, data: Uint8Array): boolean {
  return native.socketSend(fd, data);
}

/** An entry of a socket's error queue (struct sock_extended_err). */
export interface SocketErrorEntry {
  /** What the error means to the socket, as an errno name: 'ECONNREFUSED', 'EHOSTUNREACH', 'EMSGSIZE'... */
  error: string;
  /** Who reported it: an ICMP or ICMPv6 message, the local stack, or 'none'/'other' (not an error about a datagram). */
  origin: 'icmp' | 'icmp6' | 'local' | 'none' | 'other';
  /** The ICMP type and code (origin 'icmp' or 'icmp6'). */
  type: number;
  code: number;
  /** The MTU for "fragmentation needed" and "packet too big"; otherwise what the kernel put there. */
  info: number;
  /** The address that sent the ICMP error; null when unknown. */
  offender: string | null;
  /** Bytes of the offending datagram written into the buffer: its payload for UDP, from the ICMP header on for a ping socket. */
  length: number;
  truncated: boolean;
}

/**
 * Reads one entry of the error queue of a socket opened with `recvErr` (MSG_ERRQUEUE); null when the
 * queue is empty. Never blocks.
 */
export function recvSocketError(fd: number, buffer: Buffer): SocketErrorEntry | null {
  const e = native.recvSocketError(fd, buffer);
  if (e === null) return null;
  const { errno, ...rest } = e;
  return { error: errno === 0 ? '' : (getSystemErrorMap().get(-errno)?.[0] ?? `E${errno}`), ...rest };
}

export interface OrigDstDatagram {
  /** Bytes written into the buffer. */
  length: number;
  /** The datagram was longer than the buffer and was cut. */
  truncated: boolean;
  source: string;
  sourcePort: number;
  /** Where the sender sent it (IP_ORIGDSTADDR); null unless the socket was opened with origDstAddr. */
  destination: string | null;
  destinationPort: number | null;
}

/**
 * One recvmsg(2) that also returns the datagram's original destination, as
 * a tproxy rule redirected it. Null when nothing is waiting (never blocks).
 */
export function recvWithOrigDst(fd: number, buffer: Buffer): OrigDstDatagram | null {
  return native.recvOrigDst(fd, buffer);
}

/**
 * Calls `onReadable` from the event loop whenever `fd` is readable (level-triggered:
 * read until recvWithOrigDst returns null, or it fires again). An entry in the error queue
 * of a socket opened with `recvErr` counts as readable too (read it with recvSocketError).
 * stop() before closing the fd.
 */
export function watchReadable(fd: number, onReadable: (err: NetnsError | null) => void): { stop(): void } {
  return new native.ReadableWatcher(fd, (errno) => onReadable(errno === null ? null : new NetnsError(errno, 'poll', `watching fd ${fd}`)));
}
