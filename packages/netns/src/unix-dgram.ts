// Unix datagram sockets (node:dgram has none): what sd_notify needs to reach
// $NOTIFY_SOCKET, and the receiving end with the sender's credentials, as
// systemd sees them. A name starting with '@' is an abstract socket (no file;
// scoped to the network namespace).
import { native } from './native.js';

const addon = native;

export interface UnixDatagram {
  /** Bytes written into the buffer. */
  length: number;
  /** The datagram was longer than the buffer and was cut. */
  truncated: boolean;
  /** The sender's process, user and group as the kernel vouches for them (SCM_CREDENTIALS); -1 when absent. */
  pid: number;
  uid: number;
  gid: number;
}

/**
 * Sends one datagram to the socket `name` (a path, or '@name' abstract) from a fresh socket that
 * is closed again. Never blocks: a receiver whose queue is full makes it throw (EAGAIN), as does
 * one that is not there (ENOENT, ECONNREFUSED). Throws a NetnsError ('sendto').
 */
export function sendUnixDatagram(name: string, data: Uint8Array): void {
  addon.unixDgramSend(name, data);
}

/**
 * A bound datagram socket's fd (non-blocking, close-on-exec) that receives each sender's
 * credentials; read it with receiveUnixDatagram() when watchReadable() says so, close it with
 * closeSync. A path is left behind as a socket file: unlink it after closing.
 */
export function bindUnixDatagram(name: string): number {
  return addon.unixDgramBind(name);
}

/** One datagram from a socket of bindUnixDatagram(); null when none is waiting (never blocks). */
export function receiveUnixDatagram(fd: number, buffer: Buffer): UnixDatagram | null {
  return addon.unixDgramRecv(fd, buffer);
}
