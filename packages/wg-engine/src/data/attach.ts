// Connects a Device to a TUN and a UDP port: the one way the cage and the
// server wire an engine to the kernel. Every packet runs to completion on one
// shard: shard k owns TUN queue k and UDP socket k (one SO_REUSEPORT group on
// one address), and reads, seals or opens, and sends on its own thread. With
// workers > 0 the shards are worker threads; with workers 0 the one shard is
// the same code on the main thread, served when the event loop sees its fds
// readable. The kernel spreads flows over the queues and peers over the
// sockets, so a flow's packets stay on one shard and keep their order.
import { UdpSocket, type Tun } from '@wirecage/tun';
import type { Device } from '../device.js';
import { DataPlane } from './plane.js';

export interface AttachOptions {
  /** UDP port to listen on; 0 lets the kernel pick. Ignored with udpFds. */
  listenPort?: number;
  /** Listen address (IPv4 or IPv6 literal); default every address of both families. Ignored with udpFds. */
  listenAddress?: string;
  /**
   * Inherited UDP sockets to use instead of listening: one per shard
   * (max(workers, 1) of them), all bound to one address in one SO_REUSEPORT
   * group (with workers 0 or 1, one socket, SO_REUSEPORT not needed). They
   * are adopted: close(), or a failed attach, closes them.
   */
  udpFds?: number[];
  /** Shard workers; 0 runs the one shard on the main thread. */
  workers: number;
}

export interface Attachment {
  /** The bound UDP port. */
  readonly port: number;
  /** The data plane (workers 0 included: its one shard is inline). */
  readonly plane: DataPlane;
  close(): Promise<void>;
}

/**
 * tun: opened with max(workers, 1) queues, no more (`Tun.open({ queues })`);
 * null: no TUN (a server without NAT answers handshakes only), which takes workers 0.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async on purpose: a failure reaches the caller as a rejection, as it did when binding awaited
export async function attachDevice(device: Device, tun: Tun | null, opts: AttachOptions): Promise<Attachment> {
  const shards = Math.max(opts.workers, 1);
  if (tun === null && opts.workers !== 0) throw new Error('a data plane without a TUN runs on the main thread (workers 0)');
  // Exactly one queue per shard: the kernel spreads flows over every queue, and one that no shard read would swallow its flows.
  if (tun !== null && tun.queueCount !== shards) {
    throw new Error(
      `${shards} shard(s) need one TUN queue each, TUN '${tun.name}' has ${tun.queueCount}: open it with Tun.open({ queues: ${shards} })`,
    );
  }
  if (opts.udpFds !== undefined && opts.udpFds.length !== shards) {
    throw new Error(
      `udpFds must hold one socket per shard (${shards} for workers ${opts.workers}), got ${opts.udpFds.length}: ` +
        'bind them to one address in one SO_REUSEPORT group',
    );
  }
  const sockets: UdpSocket[] = [];
  let plane: DataPlane;
  try {
    if (opts.udpFds !== undefined) for (const fd of opts.udpFds) sockets.push(UdpSocket.fromFd(fd));
    else {
      const open = (port: number) =>
        UdpSocket.open({
          port,
          address: opts.listenAddress,
          family: opts.listenAddress === undefined ? 'dual' : opts.listenAddress.includes(':') ? 6 : 4,
          reusePort: shards > 1,
        });
      // The rest of the group binds the port the first one got.
      sockets.push(open(opts.listenPort ?? 0));
      while (sockets.length < shards) sockets.push(open(sockets[0]!.port));
    }
    if (new Set(sockets.map((s) => s.port)).size !== 1) throw new Error('udpFds must all be bound to one port (one SO_REUSEPORT group)');
    plane = DataPlane.start(device, {
      io: { tun, sockets },
      workers: opts.workers,
      vnetHdr: tun?.offload.vnetHdr ?? false,
    });
  } catch (err) {
    for (const s of sockets) s.close();
    throw err;
  }
  return {
    port: sockets[0]!.port,
    plane,
    close: async () => {
      await plane.close();
      for (const s of sockets) s.close();
    },
  };
}
