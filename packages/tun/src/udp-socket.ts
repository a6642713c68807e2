import { isIPv4, isIPv6 } from 'node:net';
import { TunError } from './errors.js';
import { native, type NativeUdpSocket } from './native.js';

/** 4: IPv4 only; 6: IPv6 only; 'dual': IPv6 socket that also carries IPv4 (IPV6_V6ONLY=0), or IPv4 without IPv6. */
export type UdpFamily = 4 | 6 | 'dual';

export interface UdpSocketOptions {
  /** Local address to bind. Default: the family's wildcard. 'dual' takes only an IPv6 address. */
  address?: string;
  /** Local port; 0 (default) lets the kernel pick. */
  port?: number;
  /** Default 'dual'. */
  family?: UdpFamily;
  /** Create the socket in this network namespace (an open fd). Default: the calling thread's. */
  netnsFd?: number;
  /**
   * SO_REUSEPORT: sockets opened with it on the same address and port form a
   * group, and the kernel spreads the senders over them (one sender always
   * lands on the same socket). Default false.
   */
  reusePort?: boolean;
}

/**
 * A non-blocking UDP socket for the data plane: RingPoller.udp and RingEmitter.udp move
 * its datagrams in native code (on dups of its fd); sendTo() sends a control packet from
 * the calling thread. Kernel buffers are raised to 4 MB (SO_RCVBUFFORCE when
 * allowed). IPv4 peers of a dual-stack socket appear as family 4 everywhere.
 */
export class UdpSocket {
  readonly #native: NativeUdpSocket;
  #closed = false;

  private constructor(socket: NativeUdpSocket) {
    this.#native = socket;
  }

  static open(options: UdpSocketOptions = {}): UdpSocket {
    const { address, port = 0, family = 'dual', netnsFd, reusePort = false } = options;
    if (family !== 4 && family !== 6 && family !== 'dual') throw new RangeError(`family must be 4, 6 or 'dual', got ${String(family)}`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0 to 65535, got ${port}`);
    if (address !== undefined) {
      const ok = family === 4 ? isIPv4(address) : isIPv6(address);
      if (!ok) {
        throw new RangeError(
          `address '${address}' is not an IPv${family === 4 ? '4' : '6'} address${family === 'dual' ? " (a 'dual' socket binds an IPv6 address; use family 4 for an IPv4 one)" : ''}`,
        );
      }
    }
    const { fd } = native.openUdp({
      family: family === 'dual' ? 0 : family,
      port,
      ...(address !== undefined && { address }),
      ...(netnsFd !== undefined && { netnsFd }),
      reusePort,
    });
    return new UdpSocket(new native.UdpSocket(fd));
  }

  /** Adopts an inherited, already bound UDP socket (made non-blocking; closed by close()). */
  static fromFd(fd: number): UdpSocket {
    return new UdpSocket(new native.UdpSocket(fd));
  }

  get fd(): number {
    return this.#native.fd;
  }

  /** The bound local port. */
  get port(): number {
    return this.#native.port;
  }

  /** The socket's address family: 6 for an IPv6 or dual-stack socket. */
  get family(): 4 | 6 {
    return this.#native.family;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * One synchronous sendto() (control packets from the main thread). False
   * when the kernel's buffer is full (EAGAIN/ENOBUFS, counted in stats()); a
   * TunError for any other failure. `addr` holds 4 (family 4) or 16 bytes.
   */
  sendTo(bytes: Uint8Array, family: 4 | 6, addr: Uint8Array, port: number, scope?: number): boolean {
    if (this.#closed) throw new TunError(9, 'sendto', 'UDP socket is closed');
    return this.#native.sendTo(bytes, family, addr, port, scope);
  }

  stats(): { sent: number; sendDropped: number } {
    return this.#native.stats();
  }

  /** Closes it (the kernel's socket lives on while a poller or emitter holds a dup). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }
}
