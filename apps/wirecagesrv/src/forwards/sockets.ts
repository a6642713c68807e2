// The sockets a forward needs, all made by @wirecage/netns so that each one
// is created in the namespace it belongs to whatever thread runs: the public
// listener in the server's own (or a given) namespace, and, per remote
// client, a transparent socket in the NAT namespace bound to that client's
// address and port (IP_TRANSPARENT), so the service in the cage sees who is
// really connecting.
import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { bindSocket, listenSocket, socketInNetns } from '@wirecage/netns';

export interface Remote {
  address: string;
  port: number;
  family: 4 | 6;
}

/** A remote as the kernel reported it; IPv4-mapped IPv6 (from a dual-stack listener) becomes IPv4. */
export function remoteOf(address: string, port: number): Remote {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, port, family: 4 };
  return { address, port, family: net.isIPv6(address) ? 6 : 4 };
}

function withFd<T>(fd: number, use: (fd: number) => T): T {
  try {
    return use(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function familyOf(host: string): 4 | 6 {
  return net.isIPv6(host) ? 6 : 4;
}

/** A listening TCP socket on host:port; "::" takes both families. Throws a NetnsError (EADDRINUSE, EACCES...). */
export function listenTcp(netnsFd: number | null, host: string, port: number, server: net.Server): Promise<void> {
  const fd = withFd(socketInNetns(netnsFd, familyOf(host), 'tcp', { reuseAddr: true, ipv6Only: false }), (fd) => {
    bindSocket(fd, host, port);
    listenSocket(fd);
    return fd;
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A bound UDP socket on host:port; "::" takes both families. */
export function bindUdp(netnsFd: number | null, host: string, port: number): Promise<dgram.Socket> {
  const family = familyOf(host);
  const fd = withFd(socketInNetns(netnsFd, family, 'udp', { ipv6Only: false }), (fd) => {
    bindSocket(fd, host, port);
    return fd;
  });
  return adoptUdp(fd, family);
}

function adoptUdp(fd: number, family: 4 | 6): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    sock.once('error', (err) => {
      sock.close();
      reject(err);
    });
    sock.bind({ fd }, () => {
      sock.removeAllListeners('error');
      resolve(sock);
    });
  });
}

/**
 * A TCP socket in the NAT namespace, bound to the remote client's address and
 * port, connecting to the peer. SO_REUSEADDR lets one client address:port
 * reach two forwards at once (the connections differ by destination).
 */
export function connectTransparentTcp(natFd: number, from: Remote, to: { address: string; port: number }): net.Socket {
  const fd = withFd(socketInNetns(natFd, from.family, 'tcp', { transparent: true, reuseAddr: true }), (fd) => {
    bindSocket(fd, from.address, from.port);
    return fd;
  });
  // manualStart: nothing may read before the connect (an unconnected socket would read EOF at once).
  const sock = new net.Socket({ fd, allowHalfOpen: true, manualStart: true } as net.SocketConstructorOpts);
  sock.connect({ host: to.address, port: to.port });
  return sock;
}

/** A UDP socket in the NAT namespace, bound to the remote client's address and port, connected to the peer. */
export async function connectTransparentUdp(natFd: number, from: Remote, to: { address: string; port: number }): Promise<dgram.Socket> {
  const fd = withFd(socketInNetns(natFd, from.family, 'udp', { transparent: true, reuseAddr: true }), (fd) => {
    bindSocket(fd, from.address, from.port);
    return fd;
  });
  const sock = await adoptUdp(fd, from.family);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(to.port, to.address, () => {
        sock.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    sock.close();
    throw err;
  }
  return sock;
}
