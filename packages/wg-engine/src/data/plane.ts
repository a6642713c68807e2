// The data plane (ARCHITECTURE.md, "The data plane"; README, "One packet
// path"): run to completion. Shard k owns TUN queue k and UDP socket k of one
// SO_REUSEPORT group, and does the whole path on its own thread:
//
//   TUN queue k --read--> egress ring k --seal--> sendmmsg (GSO) --> socket k
//   socket k --recvmmsg (GRO)--> ingress ring k --open, coalesce--> writev --> TUN queue k
//
// No thread hands a packet to another. The kernel keeps a TCP flow on one TUN
// queue and a peer's datagrams on one socket, and each ring is emptied in the
// order it was filled, so no flow is reordered. The shards are piscina
// workers, one long-lived task each; with workers 0 the one shard, the same
// Shard class, runs on the main thread, served from the event loop when libuv
// sees its fds readable (@wirecage/tun's watchReadable).
//
// The Device stays the single owner of protocol state. Shards read its shared
// mirror (keypairs, peer table, receiver-index map) and send the rare events
// back as messages (handshakes, packets waiting for a session, a keypair's
// first use, roaming, rekeying); a timer here turns the shards' per-peer
// counters into the timer events the send and receive paths would have raised.
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { PacketRing, pollIn, watchReadable, type ReadableWatch, type Tun, type UdpSocket } from '@wirecage/tun';
import type { Device } from '../device.js';
import { Endpoint } from '../endpoint.js';
import { formatIp } from '../allowed-ips.js';
import { DROP_REASONS, DropCounters } from '../stats.js';
import { confirmSession } from '../receive.js';
import {
  PEER_COUNTERS,
  PEER_ROAMING,
  PEER_WANTS_HANDSHAKE,
  PeerCounters,
  RX_AUTH,
  RX_BYTES,
  RX_DATA,
  TX_BYTES,
  TX_DATA,
} from './peer-table.js';
import {
  CONTROL_WORDS,
  CTL_CLOSED,
  CTL_CONFIG_GEN,
  CTL_INFLIGHT,
  CTL_STARTED,
  SHARD_COUNTERS,
  type AddressWords,
  type RouteEntry,
  type ShardInit,
  type ToMain,
  type ToShard,
} from './protocol.js';
import type { ShardTask } from './shard-worker.js';
import { Shard } from './shard.js';
import { EGRESS_HEADROOM, slotBytesForMtu, slotBytesForOffload } from './slot-room.js';
import type { Peer } from '../peer.js';

export interface PlaneIo {
  /** Its queue k is shard k's: exactly max(workers, 1) queues. null: no TUN (workers 0 only). */
  tun: Tun | null;
  /**
   * Socket k is shard k's: max(workers, 1) bound sockets in one SO_REUSEPORT
   * group. The main thread sends its own messages (handshakes, keepalives) on
   * socket 0. The plane's owner keeps them open until close() has resolved.
   */
  sockets: UdpSocket[];
}

export interface DataPlaneOptions {
  io: PlaneIo;
  /** The TUN side carries virtio_net_hdr (a Tun opened with offloads): TSO/USO super-packets are cut in the shards. */
  vnetHdr?: boolean;
  /** Shard workers. Default: the number of CPUs. 0: the one shard runs inline on the main thread. */
  workers?: number;
  /** Slots of each shard's ingress ring (a power of two). Default 1024. */
  ringSlots?: number;
  /** How often shard counters become timer events, in ms. Default 100. */
  syncIntervalMs?: number;
}

export interface ShardStats {
  shard: number;
  egressPackets: number;
  ingressPackets: number;
  /** Ingress packets joined to an earlier one's TUN write (TCP coalescing). */
  coalescedPackets: number;
  restarts: number;
  drops: DropCounters;
}

export interface RingStatsPair {
  egress: ReturnType<PacketRing['stats']>;
  ingress: ReturnType<PacketRing['stats']>;
}

// Compiled shards only: Node 20 workers cannot load TypeScript through loader hooks,
// so even under tsx (tests) the worker is the build output next to this file's source.
function shardWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const js = here.replace(/\.ts$/, '.js').replace(/\/src\/data\//, '/dist/data/');
  return js.replace(/plane\.js$/, 'shard-entry.cjs');
}

/** workers 0: the longest one readiness callback serves before the event loop gets a turn. */
const INLINE_BUDGET_MS = 2;

interface Seen {
  peer: Peer;
  totals: number[];
}

export class DataPlane {
  readonly workers: number;
  private readonly pool: Piscina | null;
  /** Shards: the workers, or the one inline shard (workers 0). */
  private readonly shards: number;
  /** workers 0: the shard and its watches, one per fd it reads (TUN queue, then UDP socket). */
  private inline: { shard: Shard; config: ToShard[]; watches: ReadableWatch[] } | null = null;
  /** Where what the shards open goes when there is no TUN (a server without NAT). */
  private devNull: number | null = null;
  /** rings[k]: shard k's own. */
  private readonly rings: { egress: PacketRing; ingress: PacketRing }[];
  /** The fds shard k reads and writes. */
  private readonly shardFds: ShardInit['fds'][];
  private readonly control: Int32Array;
  private readonly counters: PeerCounters;
  private readonly dropsSab: SharedArrayBuffer;
  private readonly statsSab: SharedArrayBuffer;
  private readonly ports: (MessagePort | null)[] = [];
  private readonly tasks: Promise<void>[] = [];
  private readonly restarts: number[] = [];
  private readonly seen = new Map<number, Seen>();
  private readonly sync: NodeJS.Timeout;
  private readonly onRoutes = (peer: Peer) => this.publishPeerRoutes(peer);
  private readonly onPeerRemoved = (peer: Peer) => this.syncPeer(peer);
  private closing = false;

  private constructor(
    private readonly device: Device,
    private readonly opts: DataPlaneOptions,
  ) {
    const n = opts.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 0 || n > 8) throw new RangeError(`workers must be an integer from 0 to 8, got ${n}`);
    this.workers = n;
    this.shards = Math.max(n, 1);
    this.shardFds = this.attachIo(opts.io);
    const ring = { capacity: opts.ringSlots ?? 1024, slotBytes: slotBytesForMtu(device.mtu) };
    // A shard empties its rings after each batch it reads (RTC_BATCH TUN reads, one recvmmsg), so the
    // egress ring of an offloading TUN, whose slots hold 64 KiB super-packets (75 KiB each), needs few.
    const egress = opts.vnetHdr
      ? { capacity: Math.min(ring.capacity, 64), slotBytes: slotBytesForOffload(), headroom: EGRESS_HEADROOM }
      : { ...ring, headroom: EGRESS_HEADROOM };
    this.rings = Array.from({ length: this.shards }, () => ({ egress: PacketRing.create(egress), ingress: PacketRing.create(ring) }));
    this.control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
    this.counters = new PeerCounters(device.maxPeers, this.shards);
    this.dropsSab = new SharedArrayBuffer(this.shards * DROP_REASONS.length * 8);
    this.statsSab = new SharedArrayBuffer(this.shards * SHARD_COUNTERS.length * 8);
    this.pool =
      n === 0
        ? null
        : new Piscina({
            filename: shardWorkerFile(),
            minThreads: n,
            maxThreads: n,
            idleTimeout: Infinity,
            atomics: 'disabled',
            concurrentTasksPerWorker: 1,
          });
    if (n === 0) this.startInline();
    for (let i = 0; i < n; i++) {
      this.restarts.push(0);
      this.ports.push(null);
      this.tasks.push(this.runShard(i));
    }
    device.on('routes', this.onRoutes);
    device.on('peer-removed', this.onPeerRemoved);
    this.sync = setInterval(() => this.syncCounters(), opts.syncIntervalMs ?? 100);
    this.sync.unref();
  }

  private attachIo(io: PlaneIo): ShardInit['fds'][] {
    const { tun, sockets } = io;
    if (tun === null && this.workers !== 0) throw new RangeError('a plane without a TUN runs on the main thread (workers 0)');
    // Exactly: the kernel spreads flows over every queue, and a queue no shard reads would swallow its flows.
    if ((tun !== null && tun.queueCount !== this.shards) || sockets.length !== this.shards) {
      throw new RangeError(
        `${this.shards} shard(s) need a TUN queue and a UDP socket each: ` +
          `${tun === null ? 'no TUN' : `${tun.queueCount} queue(s)`}, ${sockets.length} socket(s)`,
      );
    }
    const device = this.device;
    const udp = sockets[0]!;
    // Sends from the main thread (handshakes, keepalives, staged packets) go straight to the socket.
    device.io = {
      sendUdp: (msg, to) => {
        const b = to.bytes;
        try {
          return udp.sendTo(msg, to.family, b.subarray(0, b.length - 2), to.port);
        } catch (err) {
          // An unreachable network and the like: the timers retry, as after a lost datagram.
          device.logger.debug(`udp send to ${to.toString()}: ${(err as Error).message}`);
          return false;
        }
      },
      // Transport data never reaches the main thread: the shards open it.
      writeTun: () => device.drops.add('send-failed'),
    };
    device.listenPort = udp.port;
    // No TUN: nothing to read on that side, and what a shard opens is written nowhere.
    if (!tun) this.devNull = openSync('/dev/null', 'w');
    return sockets.map((s, k) => ({
      tun: tun ? tun.queueFd(k) : null,
      tunOut: tun ? tun.queueFd(k) : this.devNull!,
      udp: s.fd,
    }));
  }

  // workers 0: the one shard runs here, over its own fds, as a worker shard would.
  private startInline(): void {
    const config: ToShard[] = [{ t: 'routes', entries: this.routeEntries() }];
    // As from a worker, what the shard tells the main thread is handled after the slots it came from.
    const shard = new Shard(
      this.shardInit(0),
      (m) => queueMicrotask(() => this.onMessage(m)),
      () => config.splice(0),
    );
    this.restarts.push(0);
    this.inline = { shard, config, watches: [] };
    const fds = this.shardFds[0]!;
    // Started once and left so: a level-triggered watch calls back on each loop turn while its fd
    // has packets, in turn with timers, handshakes and the API, and each call serves at most
    // INLINE_BUDGET_MS. Stopping it while serving and starting it when drained would give the
    // loop no fairer a share and cost epoll_ctl calls on every burst.
    if (fds.tun !== null) this.inline.watches.push(watchReadable(fds.tun, (err) => this.serveInline(1, err)));
    this.inline.watches.push(watchReadable(fds.udp, (err) => this.serveInline(2, err)));
    Atomics.or(this.control, CTL_STARTED, 1);
  }

  // ready: the fd the event loop found readable (1 TUN, 2 UDP); serving reads the other one too.
  private serveInline(ready: number, err: Error | null): void {
    const inline = this.inline!;
    if (this.closing) return;
    if (err) {
      // That watch stopped itself (an error that stays would call back forever); the other fd is still served.
      this.device.logger.error(`the data plane on the main thread cannot wait for packets: ${err.message}`);
      return;
    }
    try {
      inline.shard.serveAvailable(INLINE_BUDGET_MS, ready);
    } catch (e) {
      this.device.logger.error(`the data plane on the main thread stopped: ${(e as Error).message}`);
      for (const w of inline.watches) w.stop();
    }
  }

  /** Starts the shards for device, over opts.io's TUN queues and sockets. */
  static start(device: Device, opts: DataPlaneOptions): DataPlane {
    return new DataPlane(device, opts);
  }

  private shardInit(index: number): ShardInit {
    const d = this.device;
    return {
      index,
      shards: this.shards,
      mtu: d.mtu,
      vnetHdr: this.opts.vnetHdr ?? false,
      fds: this.shardFds[index]!,
      timeOrigin: performance.timeOrigin,
      keypairs: d.keypairs.sab,
      keypairCapacity: d.keypairs.capacity,
      indexMap: d.index.slots.sab,
      indexBuckets: d.index.slots.mask + 1,
      peers: d.peerTable.sab,
      peerCapacity: d.peerTable.capacity,
      counters: this.counters.sab,
      drops: this.dropsSab,
      stats: this.statsSab,
      control: this.control.buffer as SharedArrayBuffer,
      egress: this.rings[index]!.egress.sab,
      ingress: this.rings[index]!.ingress.sab,
    };
  }

  // A shard's task ends only when the plane closes; anything else is a crash, and the
  // shard is started again on a fresh worker (piscina replaces the dead one).
  private async runShard(index: number): Promise<void> {
    while (!this.closing) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (m: ToMain) => this.onMessage(m));
      port1.unref();
      this.ports[index] = port1;
      port1.postMessage({ t: 'routes', entries: this.routeEntries() } satisfies ToShard);
      const task: ShardTask = { init: this.shardInit(index), port: port2 };
      try {
        await this.pool!.run(task, { transferList: [port2] });
      } catch (err) {
        if (this.closing) break;
        const n = ++this.restarts[index]!;
        this.device.logger.warn(`data-plane shard ${index} stopped (${(err as Error).message}); restarting it`);
        // A shard that keeps dying (a broken build, say) is restarted ever more slowly, not in a tight loop.
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** (n - 1), 5000)));
      } finally {
        port1.close();
        if (this.ports[index] === port1) this.ports[index] = null;
      }
    }
  }

  /** Test hook: makes shard index die inside its next slot, as a crashing worker would. */
  crashShard(index: number): void {
    this.ports[index]?.postMessage({ t: 'crash' } satisfies ToShard);
    this.bumpConfig();
  }

  private routeEntries(): RouteEntry[] {
    const out: RouteEntry[] = [];
    for (const peer of this.device.peers()) out.push(...this.peerEntries(peer));
    return out;
  }

  private peerEntries(peer: Peer): RouteEntry[] {
    return this.device.allowedIps
      .entriesFor(peer)
      .map((c) => ({ family: c.family, address: new Uint8Array(c.address), prefix: c.prefix, peer: peer.id }));
  }

  // One peer at a time: a server adding its thousandth peer sends a few bytes, not its whole table.
  private publishPeerRoutes(peer: Peer): void {
    const msg: ToShard = { t: 'peer-routes', peer: peer.id, entries: this.device.peerById(peer.id) === peer ? this.peerEntries(peer) : [] };
    for (const p of this.ports) p?.postMessage(msg);
    this.inline?.config.push(msg);
    this.bumpConfig();
  }

  // Shards look at the generation before each batch, and at least every RTC_WAIT_MS when idle.
  private bumpConfig(): void {
    Atomics.add(this.control, CTL_CONFIG_GEN, 1);
  }

  private onMessage(m: ToMain): void {
    Atomics.sub(this.control, CTL_INFLIGHT, 1);
    const d = this.device;
    try {
      switch (m.t) {
        case 'handshake': {
          const { address, port } = wordsToAddress(m.from);
          d.receiveUdp(Buffer.from(m.msg.buffer, m.msg.byteOffset, m.msg.byteLength), address, port);
          break;
        }
        case 'stage':
          // The same path a main-thread packet takes: stage, handshake, or send at once.
          d.peerById(m.peer)?.send(m.packet);
          break;
        case 'confirm': {
          const peer = d.peerById(m.peer);
          const kp = peer?.next;
          if (peer && kp && kp.slot === m.slot && d.keypairs.generation(m.slot) === m.gen) {
            this.syncPeer(peer); // timers see the data that confirmed it first
            confirmSession(d, peer, kp);
          }
          break;
        }
        case 'roam': {
          const peer = d.peerById(m.peer);
          d.peerTable.clear(m.peer, PEER_ROAMING);
          if (peer) {
            const { address, port } = wordsToAddress(m.from);
            peer.endpoint = Endpoint.of(address, port);
          }
          break;
        }
        case 'rekey':
          d.peerTable.clear(m.peer, PEER_WANTS_HANDSHAKE);
          d.peerById(m.peer)?.keepKeyFresh();
          break;
      }
    } catch (err) {
      d.drops.add('malformed');
      d.logger.debug(`data-plane message ${m.t} failed: ${(err as Error).message}`);
    }
  }

  /** Turns what the shards counted since the last sync into peer counters and timer events. */
  syncCounters(): void {
    for (const peer of this.device.peers()) this.syncPeer(peer);
  }

  private syncPeer(peer: Peer): void {
    let s = this.seen.get(peer.id);
    if (!s || s.peer !== peer) {
      // A new peer starts from zero, or from where the last holder of its id stopped.
      s = { peer, totals: s ? s.totals : PEER_COUNTERS.map(() => 0) };
      this.seen.set(peer.id, s);
    }
    const totals = PEER_COUNTERS.map((_, c) => this.counters.total(peer.id, c));
    const d = (c: number) => totals[c]! - s.totals[c]!;
    const txBytes = d(TX_BYTES);
    const rxBytes = d(RX_BYTES);
    const txData = d(TX_DATA);
    const rxAuth = d(RX_AUTH);
    const rxData = d(RX_DATA);
    s.totals = totals;
    peer.txBytes += txBytes;
    peer.rxBytes += rxBytes;
    // One sync covers up to syncIntervalMs of traffic whose order is lost: receipts go first, so data
    // sent in the same window still arms the timer that expects an answer. The other order let a
    // batch holding an answer and the next send disarm it, and a dead server went unnoticed until
    // the caged program happened to send again (a minute for TCP keepalives); at worst this order
    // costs one handshake that was not needed.
    if (rxAuth > 0) {
      peer.timers.anyAuthenticatedPacketReceived();
      peer.timers.anyAuthenticatedPacketTraversal();
    }
    if (rxData > 0) peer.timers.dataReceived();
    if (txData > 0) {
      peer.timers.anyAuthenticatedPacketTraversal();
      peer.timers.anyAuthenticatedPacketSent();
      peer.timers.dataSent();
    }
  }

  shardStats(): ShardStats[] {
    const stats = new Float64Array(this.statsSab);
    return Array.from({ length: this.shards }, (_, i) => ({
      shard: i,
      egressPackets: stats[i * SHARD_COUNTERS.length]!,
      ingressPackets: stats[i * SHARD_COUNTERS.length + 1]!,
      coalescedPackets: stats[i * SHARD_COUNTERS.length + 2]!,
      restarts: this.restarts[i]!,
      drops: new DropCounters(this.dropsSab, i * DROP_REASONS.length * 8),
    }));
  }

  /** Every shard's rings summed, so the plane reads as one. */
  ringStats(): RingStatsPair {
    const sum = (which: 'egress' | 'ingress') => {
      const all = this.rings.map((r) => r[which].stats());
      const out = { ...all[0]! };
      for (const s of all.slice(1)) for (const k of Object.keys(out) as (keyof typeof out)[]) out[k] += s[k];
      return out;
    };
    return { egress: sum('egress'), ingress: sum('ingress') };
  }

  /** Whether shard i's TUN queue has a packet to read now. */
  private tunQueueHolds(i: number): boolean {
    const fd = this.shardFds[i]!.tun;
    return fd !== null && (pollIn(fd, fd, 0) & 1) !== 0;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // No callback after this, even for a packet that is waiting now: the shard may be released below.
    for (const w of this.inline?.watches ?? []) w.close();
    clearInterval(this.sync);
    this.device.off('routes', this.onRoutes);
    this.device.off('peer-removed', this.onPeerRemoved);
    Atomics.store(this.control, CTL_CLOSED, 1);
    // A shard that is serving sees CTL_CLOSED, sends what its TUN queue holds now (bounded: drainTun)
    // and returns: wait for it, rings open, as sending goes through them. One whose worker is still
    // starting (~70 ms of CPU for an isolate with the engine) is waited for only when its queue holds
    // packets: a short command's whole output may be waiting there for it, but with an empty queue it
    // would start only to stop, which would cost a short-lived cage that much at exit. Destroying the
    // pool ends it, and its runShard loop ends on the rejection. The inline shard drains here, its
    // watches already closed.
    this.inline?.shard.drainTun();
    const started = Atomics.load(this.control, CTL_STARTED);
    await Promise.allSettled(this.tasks.filter((_, i) => (started & (1 << i)) !== 0 || this.tunQueueHolds(i)));
    for (const r of this.rings) {
      r.egress.close();
      r.ingress.close();
    }
    this.inline?.shard.release();
    await this.pool?.destroy();
    if (this.devNull !== null) closeSync(this.devNull);
  }
}

function wordsToAddress(w: AddressWords): { address: string; port: number } {
  const bytes = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) bytes.writeInt32LE(w[2 + i]!, i * 4);
  const family = w[0] === 6 ? 6 : 4;
  return { address: formatIp(family === 4 ? bytes.subarray(0, 4) : bytes), port: w[1]! };
}
