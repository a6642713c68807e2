import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { explainOpenError, TunError } from './errors.js';
import { native, WriteResult, type NativeQueue } from './native.js';
import { queueStats, sumStats, type TunStats } from './stats.js';

export interface TunOptions {
  /** Interface name, at most 15 bytes; "%d" lets the kernel number it. Default 'wirecage'. */
  name?: string;
  /** Network namespace to create the interface in, as an open fd. Default: this process's namespace. */
  netnsFd?: number;
  /** Number of queues (IFF_MULTI_QUEUE), 1 to 256. Default 1. */
  queues?: number;
  /** Interface MTU to set. Default: the kernel's (1500). */
  mtu?: number;
  /** Largest packet write() accepts. Default: `mtu` when given, else 65535. */
  maxPacketSize?: number;
  /** Most packets handed to one onPackets call. Default 64. */
  batchSize?: number;
  /** The TUN clone device. Default '/dev/net/tun'. */
  devicePath?: string;
  /**
   * Open the queues with IFF_VNET_HDR and ask for checksum, TCP (TSO4/6) and
   * UDP (USO4/6) segmentation offloads, as far as the kernel grants them (see
   * `offload`). Every packet read then starts with a 10-byte virtio_net_hdr
   * and may be a 64 KiB super-packet: such a Tun is read by a RingPoller only
   * (onPackets throws). write() adds the header itself. Default false.
   */
  offload?: boolean;
  /**
   * The interface is deleted with its network namespace (`netnsFd`, required), not when close()
   * closes its queues: the kernel then deletes it in the background once nothing holds the
   * namespace, where a last close() of an ordinary TUN waits for RCU grace periods (20-50 ms, on
   * the exit path of a cage). Only for a namespace of the caller's own that ends after close().
   * Default false.
   */
  deleteWithNetns?: boolean;
}

/** What an offloading Tun got from the kernel; all false without the `offload` option. */
export interface TunOffload {
  /** Every read and write on the queues carries a 10-byte virtio_net_hdr first. */
  vnetHdr: boolean;
  /** TUN_F_CSUM: packets may arrive with a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
  csum: boolean;
  /** TUN_F_TSO4 | TUN_F_TSO6: TCP super-packets (gso_type TCPV4/TCPV6) may arrive. */
  tso: boolean;
  /** TUN_F_USO4 | TUN_F_USO6: UDP super-packets (gso_type UDP_L4) may arrive. */
  uso: boolean;
}

/** TUNSETOFFLOAD flags (linux/if_tun.h). */
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_USO4 = 0x20;

export type PacketHandler = (packets: Buffer[], queue: number) => void;
export type ErrorHandler = (err: TunError, queue: number) => void;

const MAX_IP_PACKET = 65535;

function positiveInt(value: number | undefined, what: string, max: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > max)) {
    throw new RangeError(`${what} must be an integer from 1 to ${max}, got ${value}`);
  }
}

/**
 * A TUN interface (IFF_TUN | IFF_NO_PI) and its queues, created in any
 * network namespace without moving a Node thread into it. Packets read are
 * delivered in batches from the main loop (no thread pool); writes never
 * block and are dropped and counted when the kernel's queue is full.
 * Closing removes the interface.
 */
export class Tun {
  /** The name the kernel gave the interface. */
  readonly name: string;
  /** Its index inside its network namespace. */
  readonly ifindex: number;
  /** Its MTU right after opening. */
  readonly mtu: number;
  readonly maxPacketSize: number;
  /** The offloads in force (see TunOptions.offload). */
  readonly offload: Readonly<TunOffload>;
  readonly #queues: NativeQueue[];
  readonly #fds: number[];
  #onPackets: PacketHandler | undefined;
  #onError: ErrorHandler | undefined;
  #reading = false;
  #closed = false;

  private constructor(
    opened: { fds: number[]; name: string; ifindex: number; mtu: number; vnetHdr: boolean; offloads: number },
    maxPacketSize: number,
    batchSize: number,
  ) {
    this.name = opened.name;
    this.ifindex = opened.ifindex;
    this.mtu = opened.mtu;
    this.maxPacketSize = maxPacketSize;
    this.offload = Object.freeze({
      vnetHdr: opened.vnetHdr,
      csum: (opened.offloads & TUN_F_CSUM) !== 0,
      tso: (opened.offloads & TUN_F_TSO4) !== 0,
      uso: (opened.offloads & TUN_F_USO4) !== 0,
    });
    this.#fds = opened.fds;
    this.#queues = [];
    try {
      for (const fd of opened.fds) this.#queues.push(new native.TunQueue(fd, maxPacketSize, batchSize, opened.vnetHdr));
    } finally {
      // Queues own their fds; the ones not wrapped (if construction threw) are closed here.
      if (this.#queues.length < opened.fds.length) {
        for (const q of this.#queues) q.close();
        for (const fd of opened.fds.slice(this.#queues.length)) closeSync(fd);
      }
    }
  }

  static open(options: TunOptions = {}): Tun {
    const name = options.name ?? 'wirecage';
    const devicePath = options.devicePath ?? '/dev/net/tun';
    positiveInt(options.queues, 'queues', 256);
    positiveInt(options.mtu, 'mtu', MAX_IP_PACKET);
    positiveInt(options.maxPacketSize, 'maxPacketSize', MAX_IP_PACKET);
    positiveInt(options.batchSize, 'batchSize', 4096);
    if (options.offload !== undefined && typeof options.offload !== 'boolean') {
      throw new TypeError(`offload must be a boolean, got ${typeof options.offload}`);
    }
    if (options.netnsFd !== undefined && (!Number.isInteger(options.netnsFd) || options.netnsFd < 0)) {
      throw new RangeError(`netnsFd must be an open file descriptor, got ${options.netnsFd}`);
    }
    if (Buffer.byteLength(name) > 15 || name.length === 0 || /[/\s:]/.test(name) || name === '.' || name === '..') {
      throw new RangeError(`TUN name '${name}' is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)`);
    }
    if (options.deleteWithNetns === true && options.netnsFd === undefined) {
      throw new TypeError("deleteWithNetns needs netnsFd: the interface would outlive the TUN in this process's own namespace");
    }
    let opened;
    try {
      opened = native.openTun({
        name,
        queues: options.queues ?? 1,
        devicePath,
        ...(options.netnsFd !== undefined && { netnsFd: options.netnsFd }),
        ...(options.mtu !== undefined && { mtu: options.mtu }),
        offload: options.offload === true,
        deleteWithNetns: options.deleteWithNetns === true,
      });
    } catch (err) {
      throw explainOpenError(err, { devicePath, name, netnsFd: options.netnsFd, mtu: options.mtu });
    }
    return new Tun(opened, options.maxPacketSize ?? options.mtu ?? MAX_IP_PACKET, options.batchSize ?? 64);
  }

  /** The queue fds, owned by this Tun (closed by close()). */
  get fds(): number[] {
    return [...this.#fds];
  }

  /**
   * The fd of one queue, for native I/O (RingPoller.tun and RingEmitter.tun take it, and
   * dup it). Owned by the Tun: closed by close(). A queue has one reader: a shard's poller,
   * or onPackets, not both.
   */
  queueFd(queue: number): number {
    this.#assertOpen();
    const fd = this.#fds[queue];
    if (!Number.isInteger(queue) || fd === undefined) {
      throw new RangeError(`queue ${queue} does not exist (this TUN has ${this.#queues.length})`);
    }
    return fd;
  }

  /** True once onPackets started the Tun's own readers (then no RingPoller may read its queues). */
  get reading(): boolean {
    return this.#reading;
  }

  get queueCount(): number {
    return this.#queues.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Starts reading every queue; `handler` gets each batch (one read() per
   * packet, at most batchSize) and the queue it came from. Calling again
   * replaces the handler. The Buffers share one ArrayBuffer per batch.
   */
  onPackets(handler: PacketHandler): void {
    this.#assertOpen();
    this.#onPackets = handler;
    if (this.#reading) return;
    if (this.offload.vnetHdr) {
      throw new Error(
        `TUN '${this.name}' was opened with offload: its reads carry a virtio_net_hdr and may be 64 KiB super-packets, ` +
          'which only a RingPoller and a shard that segments them handle; open it without offload to use onPackets',
      );
    }
    this.#reading = true;
    this.#queues.forEach((q, i) => q.start((err, buffer, lengths) => this.#dispatch(i, err, buffer, lengths)));
  }

  /**
   * Errors that stop a queue's reader (the interface was deleted under it).
   * Without a handler they are thrown as uncaught exceptions.
   */
  onError(handler: ErrorHandler): void {
    this.#onError = handler;
  }

  /**
   * Hands one IP packet to the kernel through `queue` (default 0); on an
   * offloading Tun it goes with a zeroed virtio_net_hdr (a plain, fully
   * checksummed packet). True when
   * written; false when refused (empty, over maxPacketSize), dropped (queue
   * full) or rejected by the kernel; stats() tells which. Never blocks.
   */
  write(packet: Uint8Array, queue = 0): boolean {
    const q = this.#queues[queue];
    if (q === undefined) throw new RangeError(`queue ${queue} does not exist (this TUN has ${this.#queues.length})`);
    return q.write(packet) === WriteResult.Written;
  }

  stats(): TunStats {
    return sumStats(this.#queues.map((q) => queueStats(q.stats())));
  }

  /** Lets the process exit while this TUN is being read (like socket.unref()). */
  unref(): this {
    for (const q of this.#queues) q.setRef(false);
    return this;
  }

  ref(): this {
    for (const q of this.#queues) q.setRef(true);
    return this;
  }

  /**
   * Stops the readers, closes every queue; the kernel then deletes the interface once the
   * dups that pollers and emitters hold are closed too. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#queues) q.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new TunError(constants.errno.EBADF, 'read', `TUN '${this.name}' is closed`);
  }

  #dispatch(queue: number, err: TunError | null, buffer?: ArrayBuffer, lengths?: Uint32Array): void {
    if (err) {
      err.message = `TUN '${this.name}' queue ${queue}: ${err.message}`;
      if (!this.#onError) throw err;
      this.#onError(err, queue);
      return;
    }
    const packets: Buffer[] = new Array<Buffer>(lengths!.length);
    let offset = 0;
    for (let i = 0; i < lengths!.length; i++) {
      packets[i] = Buffer.from(buffer!, offset, lengths![i]);
      offset += lengths![i]!;
    }
    this.#onPackets?.(packets, queue);
  }
}
