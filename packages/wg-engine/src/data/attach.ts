// Connects a Device to a TUN and a UDP port: the one way the cage and the
// server wire an engine to the kernel. With workers > 0 the sharded plane
// (native pumps, worker shards) carries the data; with 0 everything runs on
// the main thread over node:dgram, which is simpler to debug.
import { UdpSocket, type Tun } from '@wirecage/tun';
import type { Device } from '../device.js';
import { UdpBind } from '../udp.js';
import { DataPlane, type PlaneMode } from './plane.js';

export interface AttachOptions {
  /** UDP port to listen on; 0 lets the kernel pick. Ignored with udpFd. */
  listenPort?: number;
  /** Listen address (IPv4 or IPv6 literal); default every address of both families. */
  listenAddress?: string;
  /** An inherited, already bound UDP socket to use instead (sharded mode only). */
  udpFd?: number;
  /** Shard workers; 0 runs the data path on the main thread. */
  workers: number;
  /**
   * The sharded plane's design (DataPlane's mode). 'rtc' and 'rtc-split' need a Tun opened with
   * at least `workers` queues, and opens one UDP socket per shard on the port
   * (SO_REUSEPORT). Default 'pipeline'.
   */
  mode?: PlaneMode;
}

export interface Attachment {
  /** The bound UDP port. */
  readonly port: number;
  /** The sharded plane, when workers > 0. */
  readonly plane: DataPlane | null;
  close(): Promise<void>;
}

export async function attachDevice(device: Device, tun: Tun, opts: AttachOptions): Promise<Attachment> {
  if (opts.workers === 0) {
    if (opts.udpFd !== undefined) throw new Error('an inherited UDP socket needs the sharded data plane (workers > 0)');
    if (tun.offload.vnetHdr) throw new Error('a TUN opened with offloads needs the sharded data plane (workers > 0)');
    const v6 = opts.listenAddress?.includes(':');
    const bind = await UdpBind.open(device, {
      port: opts.listenPort ?? 0,
      host4: v6 ? undefined : opts.listenAddress,
      host6: v6 ? opts.listenAddress : undefined,
      ipv6: opts.listenAddress === undefined || v6,
    });
    device.io.writeTun = (packet) => {
      tun.write(packet);
    };
    tun.onPackets((packets) => {
      for (const p of packets) device.sendPacket(p);
    });
    return {
      port: bind.port,
      plane: null,
      close: () => {
        bind.close();
        return Promise.resolve();
      },
    };
  }
  const rtc = opts.mode === 'rtc' || opts.mode === 'rtc-split';
  if (rtc && opts.udpFd !== undefined) throw new Error("mode 'rtc' opens a UDP socket per shard; it cannot use an inherited one");
  const open = (port: number) =>
    UdpSocket.open({
      port,
      address: opts.listenAddress,
      family: opts.listenAddress === undefined ? 'dual' : opts.listenAddress.includes(':') ? 6 : 4,
      reusePort: rtc,
    });
  const udp = opts.udpFd !== undefined ? UdpSocket.fromFd(opts.udpFd) : open(opts.listenPort ?? 0);
  const sockets = [udp];
  let plane: DataPlane;
  try {
    // The rest of the group binds the port the first one got.
    while (rtc && sockets.length < opts.workers) sockets.push(open(udp.port));
    plane = DataPlane.start(device, {
      io: { tun: { tun, queue: 0 }, udp, ...(rtc && { shardSockets: sockets }) },
      workers: opts.workers,
      vnetHdr: tun.offload.vnetHdr,
      mode: opts.mode ?? 'pipeline',
    });
  } catch (err) {
    for (const s of sockets) s.close();
    throw err;
  }
  return {
    port: udp.port,
    plane,
    close: async () => {
      await plane.close();
      for (const s of sockets) s.close();
    },
  };
}
