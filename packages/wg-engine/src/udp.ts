// The engine's UDP side on node:dgram: one IPv4 and one IPv6 socket on the
// same port (IPv6 with v6only, so each family has its own socket as
// wireguard-go binds them). Used by tests, tools and the control plane; the
// batched native sockets of @wirecage/tun replace it on the data plane.
import dgram from 'node:dgram';
import type { Device } from './device.js';
import type { Endpoint } from './endpoint.js';

export interface UdpBindOptions {
  port?: number;
  /** Address for the IPv4 socket; default all. */
  host4?: string;
  /** Address for the IPv6 socket; default all. */
  host6?: string;
  /** Open the IPv6 socket; default true (skipped silently when the host has no IPv6). */
  ipv6?: boolean;
}

export class UdpBind {
  private constructor(
    readonly port: number,
    private readonly v4: dgram.Socket,
    private readonly v6: dgram.Socket | null,
  ) {}

  /** Binds the sockets and connects them to the device (device.io and device.listenPort are set). */
  static async open(device: Device, opts: UdpBindOptions = {}): Promise<UdpBind> {
    const v4 = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    const port = await bind(v4, opts.port ?? 0, opts.host4);
    let v6: dgram.Socket | null = null;
    if (opts.ipv6 !== false) {
      const s = dgram.createSocket({ type: 'udp6', ipv6Only: true, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      try {
        await bind(s, port, opts.host6);
        v6 = s;
      } catch (err) {
        s.close();
        const code = (err as NodeJS.ErrnoException).code;
        // No IPv6 on this host is fine; a taken port is not.
        if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') {
          v4.close();
          throw err;
        }
      }
    }
    const b = new UdpBind(port, v4, v6);
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo) => device.receiveUdp(msg, rinfo.address, rinfo.port);
    v4.on('message', onMessage);
    v6?.on('message', onMessage);
    // A socket error (ICMP unreachable surfaced as ECONNREFUSED, etc.) is not fatal to the engine.
    const onError = (err: Error) => device.logger.debug(`udp: ${err.message}`);
    v4.on('error', onError);
    v6?.on('error', onError);
    device.listenPort = port;
    device.io = {
      sendUdp: (msg, to) => b.send(msg, to),
      writeTun: device.io.writeTun,
    };
    return b;
  }

  send(msg: Buffer, to: Endpoint): boolean {
    const s = to.family === 4 ? this.v4 : this.v6;
    if (!s) return false;
    s.send(msg, to.port, to.address);
    return true;
  }

  close(): void {
    this.v4.close();
    this.v6?.close();
  }
}

function bind(s: dgram.Socket, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    s.once('error', onError);
    s.bind({ port, address: host, exclusive: true }, () => {
      s.off('error', onError);
      resolve(s.address().port);
    });
  });
}
