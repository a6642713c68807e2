// Connects a Device to a TUN and a UDP port: the one way the cage and the
// server wire an engine to the kernel. The same Shard code carries every
// packet: in worker threads (workers > 0: native pumps and shared rings, or in
// 'rtc' each shard reading its own TUN queue and socket), or inline on the
// main thread (workers 0: one 'rtc' shard, served when the event loop sees its fds readable).
import { UdpSocket, type Tun } from '@wirecage/tun';
import type { Device } from '../device.js';
import { DataPlane, type PlaneMode } from './plane.js';

export interface AttachOptions {
  /** UDP port to listen on; 0 lets the kernel pick. Ignored with udpFd. */
  listenPort?: number;
  /** Listen address (IPv4 or IPv6 literal); default every address of both families. */
  listenAddress?: string;
  /** An inherited, already bound UDP socket to use instead. */
  udpFd?: number;
  /** Shard workers; 0 runs the one shard on the main thread. */
  workers: number;
  /**
   * The plane's design (DataPlane's mode). 'rtc' and 'rtc-split' need a Tun opened with
   * at least `workers` queues, and opens one UDP socket per shard on the port
   * (SO_REUSEPORT). Default 'pipeline'; ignored with workers 0 (its shard reads its own fds, as in 'rtc').
   */
  mode?: PlaneMode;
}

export interface Attachment {
  /** The bound UDP port. */
  readonly port: number;
  /** The data plane (workers 0 included: its one shard is inline). */
  readonly plane: DataPlane;
  close(): Promise<void>;
}

/** tun null: no TUN (a server without NAT answers handshakes only); that takes workers 0. */
// eslint-disable-next-line @typescript-eslint/require-await -- async on purpose: a failure reaches the caller as a rejection, as it did when binding awaited
export async function attachDevice(device: Device, tun: Tun | null, opts: AttachOptions): Promise<Attachment> {
  if (tun === null && opts.workers !== 0) throw new Error('a data plane without a TUN runs on the main thread (workers 0)');
  const inline = opts.workers === 0;
  // The one inline shard always reads its own fds: the mode names designs of worker shards.
  const mode = inline ? 'rtc' : (opts.mode ?? 'pipeline');
  const rtc = mode === 'rtc' || mode === 'rtc-split';
  if (rtc && !inline && opts.udpFd !== undefined)
    throw new Error("mode 'rtc' opens a UDP socket per shard; it cannot use an inherited one");
  const open = (port: number) =>
    UdpSocket.open({
      port,
      address: opts.listenAddress,
      family: opts.listenAddress === undefined ? 'dual' : opts.listenAddress.includes(':') ? 6 : 4,
      reusePort: rtc && !inline,
    });
  const udp = opts.udpFd !== undefined ? UdpSocket.fromFd(opts.udpFd) : open(opts.listenPort ?? 0);
  const sockets = [udp];
  let plane: DataPlane;
  try {
    // The rest of the group binds the port the first one got.
    while (rtc && sockets.length < opts.workers) sockets.push(open(udp.port));
    plane = DataPlane.start(device, {
      io: { tun: tun && { tun, queue: 0 }, udp, ...(rtc && { shardSockets: sockets }) },
      workers: opts.workers,
      vnetHdr: tun?.offload.vnetHdr ?? false,
      mode,
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
