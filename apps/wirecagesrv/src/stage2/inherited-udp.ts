// The WireGuard UDP sockets that stage 1 bound (so that a port below 1024
// works when `up` runs as root: stage 2, root only in its user namespace,
// could not bind it). wg-engine's UdpBind binds its own sockets, and Node's
// dgram adopts an fd only through bind({ fd }), so this is the small adapter
// that plugs inherited fds into the device the way UdpBind does.
import dgram from 'node:dgram';
import type { Device, Endpoint } from '@wirecage/wg-engine';

const BUFFER_BYTES = 4 << 20;

export class InheritedUdp {
  private constructor(
    readonly port: number,
    private readonly v4: dgram.Socket | null,
    private readonly v6: dgram.Socket | null,
  ) {}

  /** Adopts the bound fds (either may be null, not both) and connects them to the device. */
  static adopt(device: Device, fds: { fd4: number | null; fd6: number | null }): InheritedUdp {
    const open = (fd: number | null, type: 'udp4' | 'udp6') => {
      if (fd === null) return null;
      const s = dgram.createSocket({ type, recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
      s.bind({ fd });
      return s;
    };
    const v4 = open(fds.fd4, 'udp4');
    const v6 = open(fds.fd6, 'udp6');
    const port = (v4 ?? v6)!.address().port;
    const b = new InheritedUdp(port, v4, v6);
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo) => device.receiveUdp(msg, rinfo.address, rinfo.port);
    // An ICMP error surfaced on the socket is not fatal to the engine.
    const onError = (err: Error) => device.logger.debug(`udp: ${err.message}`);
    for (const s of [v4, v6]) s?.on('message', onMessage).on('error', onError);
    device.listenPort = port;
    device.io = { sendUdp: (msg, to) => b.send(msg, to), writeTun: device.io.writeTun };
    return b;
  }

  send(msg: Buffer, to: Endpoint): boolean {
    if (to.family === 4 && !this.v4 && this.v6) {
      // A dual-stack IPv6 socket reaches IPv4 peers through mapped addresses.
      this.v6.send(msg, to.port, `::ffff:${to.address}`);
      return true;
    }
    const s = to.family === 4 ? this.v4 : this.v6;
    if (!s) return false;
    s.send(msg, to.port, to.address);
    return true;
  }

  close(): void {
    this.v4?.close();
    this.v6?.close();
  }
}
