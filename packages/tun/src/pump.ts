import { Doorbell } from './doorbell.js';
import { describeErrno, TunError } from './errors.js';
import { native, type NativePump, type NativePumpStats } from './native.js';
import { attachPump, detachPump } from './pump-registry.js';
import { OFFLOAD_READ_BYTES, PacketRing } from './ring.js';
import type { Tun } from './tun.js';
import { UdpSocket } from './udp-socket.js';

export type PumpKind = 'tunReader' | 'udpReader';

export interface PumpOptions {
  /** Most packets per batch (recvmmsg/sendmmsg size, reads per doorbell ring or per emit round). 1 to 1024, default 64. */
  batch?: number;
  /** UDP emitter: send runs of same-destination, same-size slots as one UDP GSO message. Default true. */
  gso?: boolean;
  /** udpReader: accept UDP GRO (coalesced) receives and split them into slots. Default true. */
  gro?: boolean;
}

/** A TUN queue: a Tun and a queue index (the Tun then refuses its own reader on it), or a raw queue fd. */
export type TunQueueTarget = { tun: Tun; queue?: number } | number;

/** A pump's counters (documented on NativePumpStats), with the last errno by name. */
export interface PumpStats extends Omit<NativePumpStats, 'lastErrno' | 'fatal'> {
  /** errno name of the latest failure, if any. */
  lastError: string | undefined;
  /** The error that ended the thread (e.g. EBADFD: the TUN was deleted), if it ended on its own. */
  fatal: TunError | undefined;
}

function checkRing(ring: PacketRing, doorbell: Doorbell): void {
  if (!(ring instanceof PacketRing)) throw new TypeError('ring must be a PacketRing');
  if (!(doorbell instanceof Doorbell)) throw new TypeError('a reader needs the Doorbell of its shards');
}

/**
 * A native thread moving packets from a TUN queue or a UdpSocket into a
 * PacketRing (see the README's "Rings, pumps, pollers and emitters"). The pump holds a dup of
 * the fd and references to the ring's memory, so neither can vanish under
 * its thread. It ends when stop() is called, when the ring is closed (within
 * 50 ms), or on an unrecoverable error (stats().fatal). It does not keep the
 * process alive; the environment that created it joins it when it ends.
 */
export class RingPump {
  readonly kind: PumpKind;
  readonly #native: NativePump;
  readonly #owner: object | undefined;
  readonly #key: string;
  #stopped = false;

  private constructor(kind: PumpKind, owner: object | undefined, key: string, create: () => NativePump, conflict: string) {
    this.kind = kind;
    this.#owner = owner;
    this.#key = key;
    if (owner) attachPump(owner, key, this, conflict);
    try {
      this.#native = create();
    } catch (err) {
      if (owner) detachPump(owner, key, this);
      throw err;
    }
  }

  /**
   * TUN queue -> ring: each packet read into a slot at OFFSET = the ring's
   * headroom. On a Tun opened with offload the slot holds the 10-byte
   * virtio_net_hdr and then the packet (LENGTH covers both), and the ring's
   * slots need room for OFFLOAD_READ_BYTES after the headroom.
   */
  static tunReader(target: TunQueueTarget, ring: PacketRing, doorbell: Doorbell, options: PumpOptions = {}): RingPump {
    checkRing(ring, doorbell);
    if (
      typeof target !== 'number' &&
      (target.tun.offload.tso || target.tun.offload.uso) &&
      ring.dataBytes - ring.headroom < OFFLOAD_READ_BYTES
    ) {
      throw new RangeError(
        `TUN '${target.tun.name}' hands over 64 KiB super-packets (offload), which ${ring.slotBytes}-byte slots with ` +
          `${ring.headroom} bytes of headroom cannot hold: create its ring with slotBytes: slotBytesFor(OFFLOAD_READ_BYTES, { headroom })`,
      );
    }
    return RingPump.#tun('tunReader', target, (fd) => new native.RingPump('tunReader', fd, ring.i32, doorbell.i32, options));
  }

  /** UDP socket -> ring: datagrams with their source address, at OFFSET = the ring's headroom. */
  static udpReader(socket: UdpSocket, ring: PacketRing, doorbell: Doorbell, options: PumpOptions = {}): RingPump {
    checkRing(ring, doorbell);
    return RingPump.#udp('udpReader', socket, (fd) => new native.RingPump('udpReader', fd, ring.i32, doorbell.i32, options));
  }

  static #tun(kind: PumpKind, target: TunQueueTarget, create: (fd: number) => NativePump): RingPump {
    if (typeof target === 'number') return new RingPump(kind, undefined, kind, () => create(target), '');
    const { tun, queue = 0 } = target;
    if (tun.reading) {
      throw new Error(
        `TUN '${tun.name}' is already read by its own onPackets reader: a queue can have one reader, open the Tun without calling onPackets to pump it`,
      );
    }
    const fd = tun.queueFd(queue);
    return new RingPump(kind, tun, `${kind}:${queue}`, () => create(fd), `TUN '${tun.name}' queue ${queue} already has a ${kind} pump`);
  }

  static #udp(kind: PumpKind, socket: UdpSocket, create: (fd: number) => NativePump): RingPump {
    if (!(socket instanceof UdpSocket)) throw new TypeError('socket must be a UdpSocket');
    if (socket.closed) throw new TunError(9, 'fcntl(F_DUPFD_CLOEXEC)', 'UDP socket is closed');
    const fd = socket.fd;
    return new RingPump(kind, socket, kind, () => create(fd), `this UDP socket already has a ${kind} pump`);
  }

  /** False once the thread ended (stop(), ring closed, or fatal error). */
  get running(): boolean {
    return !this.#stopped && this.#native.running;
  }

  stats(): PumpStats {
    const { lastErrno, fatal, ...counters } = this.#native.stats();
    return { ...counters, lastError: lastErrno ? describeErrno(lastErrno)[0] : undefined, fatal };
  }

  /** Stops and joins the thread (at most a few ms), closes its fd dup. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#native.stop();
    if (this.#owner) detachPump(this.#owner, this.#key, this);
  }
}
