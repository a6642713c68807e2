// One data-plane shard, run to completion: it waits on its own TUN queue and
// UDP socket, reads a batch into its own rings, seals or opens each slot in
// place and sends the batch, all on one thread:
//
//   TUN queue --RingPoller.tun--> egress ring --seal--> RingEmitter.udp (sendmmsg, GSO) --> socket
//   socket --RingPoller.udp (recvmmsg, GRO)--> ingress ring --open, coalesce--> RingEmitter.tun --> TUN queue
//
// Everything else it needs lives in SharedArrayBuffers (keypairs, peers,
// receiver-index map, counters); what it cannot decide alone (handshakes,
// packets waiting for a session, a keypair's first use, roaming, rekeying)
// goes to the main thread as a message.
//
// The class is thread-agnostic: shard-worker.ts runs it in a piscina worker
// (run(): it blocks in poll), DataPlane with workers 0 serves it on the main
// thread when the event loop sees its fds readable (serveAvailable()). Each
// per-packet rule it applies is data/packet-rules.ts's.
import {
  PacketRing,
  RingEmitter,
  RingPoller,
  SlotCursor,
  pollIn,
  SlotField,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_HDR_LEN,
  SlotCoalescer,
  finishPartialChecksum,
  readVnetHeader,
  segmentCount,
  writePlainVnetHeader,
  writeSegment,
  type VnetHeader,
} from '@wirecage/tun';
import { AllowedIps, type Cidr } from '../allowed-ips.js';
import { IndexSlotMap } from '../index-table.js';
import { KEYPAIR_UNCONFIRMED, KeypairTable } from '../keypair.js';
import { DropCounters, DROP_REASONS, type DropReason } from '../stats.js';
import {
  PAYLOAD,
  canSendWith,
  checkInner,
  datagramKind,
  openTransport,
  outgoingFits,
  rekeyAfterReceiving,
  rekeyAfterSending,
  routeOf,
  type Opened,
} from './packet-rules.js';
import { paddedLength, sealInPlace } from './transport.js';
import {
  PEER_ROAMING,
  PEER_WANTS_HANDSHAKE,
  PeerCounters,
  PeerTable,
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
  MAX_INFLIGHT,
  SHARD_COUNTERS,
  type RouteEntry,
  type ShardInit,
  type ToMain,
  type ToShard,
} from './protocol.js';

// Slot header words a shard reads and writes (int32 index relative to the slot).
const F_OFFSET = SlotField.OFFSET >> 2;
const F_LENGTH = SlotField.LENGTH >> 2;
const F_ADDR = SlotField.FAMILY >> 2; // family, port, addr x4, scope: the layout PeerTable copies
const F_SEGMENT = SlotField.SEGMENT >> 2;
// Ingress slots settled together: a TUN write joins at most this many TCP segments.
const RUN_SLOTS = 64;
// The largest TUN read with offloads: a 64 KiB super-packet.
const MAX_SUPER_PACKET = 65535;

// How long a shard sleeps in poll() with no packet: bounds how late it sees CLOSED and new routes.
const RTC_WAIT_MS = 20;
// TUN reads (or one recvmmsg) per batch: the batch is sealed or opened and sent before the next read.
const RTC_BATCH = 16;
// The most a closing shard spends sending what its TUN queue holds (drainTun()).
const CLOSE_DRAIN_MS = 50;

export class Shard {
  readonly index: number;
  private readonly mtu: number;
  private readonly timeOffset: number;
  private readonly keypairs: KeypairTable;
  private readonly indexMap: IndexSlotMap;
  private readonly peers: PeerTable;
  private readonly counters: PeerCounters;
  private readonly drops: DropCounters;
  private readonly stats: Float64Array;
  private readonly control: Int32Array;
  private readonly egress: SlotCursor;
  private readonly ingress: SlotCursor;
  // This shard's reads (its TUN queue, its UDP socket) and sends.
  private readonly tunIn: RingPoller | null;
  private readonly udpIn: RingPoller;
  private readonly udpOut: RingEmitter;
  private readonly tunOut: RingEmitter;
  /** The fds polled for readiness (a shard without a TUN polls its socket twice). */
  private readonly pollFds: { tun: number; udp: number };
  // Whatever one packet does, the shard keeps running: a throw drops that packet only.
  private readonly sealSlot = (seq: number, ring: PacketRing): boolean => {
    try {
      return this.seal(ring, seq);
    } catch {
      return this.drop('outgoing-malformed');
    }
  };
  private readonly openSlot = (seq: number, ring: PacketRing): boolean => {
    try {
      return this.open(ring, seq);
    } catch {
      return this.drop('malformed');
    }
  };
  // With offloads, the TCP segments of a run of ingress slots are joined into super-packets.
  private readonly coalescer = new SlotCoalescer(RUN_SLOTS);
  private readonly settleIngress = (seqs: Int32Array, emit: Uint8Array, n: number): void => {
    if (this.vnetHdr) this.stats[2]! += this.coalescer.settle(this.ingress.ring, seqs, emit, n);
  };
  private routes = new AllowedIps<number>();
  /** The TUN carries virtio_net_hdr (offloads): parse it on egress, prepend one on ingress. */
  private readonly vnetHdr: boolean;
  private readonly vnet: VnetHeader = { flags: 0, gsoType: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  private readonly scratch: Uint8Array;
  private readonly spill: Uint8Array;
  private configGen = -1;
  private readonly opened: Opened = { slot: 0, gen: 0, plain: 0 };
  /** Test hook: die inside the next slot, as a crashing worker would. */
  private dieInSlot: (() => never) | null = null;

  constructor(
    init: ShardInit,
    private readonly post: (msg: ToMain, transfer?: ArrayBuffer[]) => void,
    private readonly readConfig: () => ToShard[],
  ) {
    this.index = init.index;
    this.mtu = init.mtu;
    this.vnetHdr = init.vnetHdr;
    this.scratch = new Uint8Array(init.vnetHdr ? MAX_SUPER_PACKET : 0);
    this.spill = new Uint8Array(init.vnetHdr ? MAX_SUPER_PACKET : 0);
    // Keypair creation times are the main thread's performance.now(); ours has another origin.
    this.timeOffset = performance.timeOrigin - init.timeOrigin;
    this.keypairs = new KeypairTable(init.keypairCapacity, init.keypairs);
    this.indexMap = new IndexSlotMap(init.indexBuckets, init.indexMap);
    this.peers = new PeerTable(init.peerCapacity, init.peers);
    this.counters = new PeerCounters(init.peerCapacity, init.shards, init.counters);
    this.drops = new DropCounters(init.drops, init.index * DROP_REASONS.length * 8);
    this.stats = new Float64Array(init.stats, init.index * SHARD_COUNTERS.length * 8, SHARD_COUNTERS.length);
    this.control = new Int32Array(init.control, 0, CONTROL_WORDS);
    this.egress = new SlotCursor(PacketRing.wrap(init.egress));
    this.ingress = new SlotCursor(PacketRing.wrap(init.ingress));
    const { fds } = init;
    this.pollFds = { tun: fds.tun ?? fds.udp, udp: fds.udp };
    // Each batch is emptied before the next read, so a batch only has to fit the ring: 16 TUN reads
    // (super-packets with offloads) and one recvmmsg of 16 (each up to ~45 GRO segments).
    this.tunIn =
      fds.tun === null ? null : RingPoller.tun(fds.tun, this.egress.ring, { batch: Math.min(RTC_BATCH, this.egress.ring.capacity) });
    this.udpIn = RingPoller.udp(fds.udp, this.ingress.ring, { batch: Math.min(RTC_BATCH, this.ingress.ring.capacity) });
    this.udpOut = RingEmitter.udp(fds.udp, this.egress.ring);
    this.tunOut = RingEmitter.tun(fds.tunOut, this.ingress.ring);
    this.refreshConfig();
  }

  private now(): number {
    return performance.now() + this.timeOffset;
  }

  /** Worker threads: serves this shard's fds until the plane closes. */
  run(): void {
    Atomics.or(this.control, CTL_STARTED, 1 << this.index);
    try {
      this.serve();
    } finally {
      this.release();
    }
  }

  /** Closes the shard's own fds (dups). */
  release(): void {
    this.udpOut.close();
    this.tunOut.close();
    this.tunIn?.close();
    this.udpIn.close();
  }

  /**
   * Wait on this shard's own fds, read a batch, transform and send it, all on
   * this thread. The poll is bounded so CLOSED and configuration changes are
   * seen within RTC_WAIT_MS even when no packet comes.
   */
  private serve(): void {
    // A predecessor that died may have finished slots without sending them.
    this.udpOut.emit();
    this.tunOut.emit();
    let ready = 3; // look at both first: a predecessor may have left packets waiting
    for (;;) {
      if (Atomics.load(this.control, CTL_CLOSED)) {
        this.drainTun();
        return;
      }
      if (Atomics.load(this.control, CTL_CONFIG_GEN) !== this.configGen) this.refreshConfig();
      const read = this.readAndServe(ready);
      // After work, only ask which fd has more (no sleep); idle, sleep in poll.
      ready = pollIn(this.pollFds.tun, this.pollFds.udp, read > 0 ? 0 : RTC_WAIT_MS);
    }
  }

  /** Reads a batch from the fds `ready` names (1 TUN, 2 UDP), then transforms and sends it; returns the slots read. */
  private readAndServe(ready: number): number {
    let read = 0;
    if (ready & 1 && this.tunIn) read += this.tunIn.read();
    if (ready & 2) read += this.udpIn.read();
    // Emitting never leaves a finished slot behind (a failed send is counted and freed), so the rings are empty again after this.
    if (read > 0) this.serveOnce();
    return read;
  }

  /**
   * Run to completion on a thread that must not block (workers 0: the main thread,
   * called when the event loop sees an fd readable): reads, transforms and sends
   * while the fds have packets, for at most budgetMs, starting with the fds
   * `ready` names (1 TUN, 2 UDP). True when both are drained, false when the
   * budget ran out first (the caller comes back after other work).
   */
  serveAvailable(budgetMs: number, ready = 3): boolean {
    const fds = this.pollFds;
    if (Atomics.load(this.control, CTL_CONFIG_GEN) !== this.configGen) this.refreshConfig();
    const end = performance.now() + budgetMs;
    for (;;) {
      this.readAndServe(ready);
      ready = pollIn(fds.tun, fds.udp, 0);
      if (ready === 0) return true;
      if (performance.now() >= end) return false;
    }
  }

  /**
   * The plane is closing: send what the TUN queue holds now, without waiting for more, for at most
   * CLOSE_DRAIN_MS. Those are the last packets of a cage's command that has just ended (its last
   * datagrams, its connections' FINs and resets): returning without them, the peers would never
   * hear of them. The rings must still be open (DataPlane.close() closes them after the shards).
   */
  drainTun(): void {
    if (!this.tunIn) return;
    const end = performance.now() + CLOSE_DRAIN_MS;
    // A read finding the queue empty returns 0 at once: the TUN's fds are non-blocking.
    while (this.readAndServe(1) > 0 && performance.now() < end);
  }

  /** One pass over both rings; returns the number of slots finished. */
  private serveOnce(): number {
    // The counts include slots a crashed predecessor left BUSY, now DROP: they must leave the ring too.
    const e = this.egress.drain(this.sealSlot);
    if (e > 0) this.udpOut.emit();
    const i = this.ingress.drainRuns(this.openSlot, this.settleIngress, RUN_SLOTS);
    if (i > 0) this.tunOut.emit();
    this.stats[0]! += e;
    this.stats[1]! += i;
    return e + i;
  }

  // ---- egress: IP packet -> transport message -------------------------------------

  private seal(r: PacketRing, seq: number): boolean {
    if (this.dieInSlot) this.dieInSlot();
    const i32 = r.i32;
    const w = r.slotWord(seq);
    const u8 = r.u8;
    let off = i32[w + F_OFFSET]!;
    let len = i32[w + F_LENGTH]!;
    const data = r.dataOffset(seq);
    if (this.vnetHdr) {
      // An offloading TUN prefixes every packet with a virtio_net_hdr.
      if (len < VNET_HDR_LEN) return this.drop('outgoing-malformed');
      const h = readVnetHeader(u8, data + off, this.vnet);
      off += VNET_HDR_LEN;
      len -= VNET_HDR_LEN;
      if (h.gsoType !== VNET_GSO_NONE) return this.sealSegments(r, w, data, data + off, len, h);
      if (h.flags & VNET_F_NEEDS_CSUM) finishPartialChecksum(u8, data + off, len, h.csumStart, h.csumOffset);
    }
    const pkt = data + off;
    const padded = paddedLength(len, this.mtu);
    if (!outgoingFits(u8, pkt, len, this.mtu) || off < PAYLOAD || off + padded + 16 > r.dataBytes) {
      return this.drop('outgoing-malformed');
    }
    const peer = routeOf(this.routes, u8, pkt);
    if (peer === undefined) return this.drop('no-route');
    const slot = this.sessionFor(peer);
    if (slot < 0) return this.toMain(peer, u8, pkt, len);
    const gen = this.keypairs.generation(slot);
    const counter = this.keypairs.nextSendCounter(slot);
    if (counter < 0n) return this.toMain(peer, u8, pkt, len);
    if (!this.peers.readEndpoint(peer, i32, w + F_ADDR)) return this.drop('no-endpoint');
    const msgLen = sealInPlace(this.keypairs, slot, this.keypairs.remoteIndex(slot), counter, u8, pkt - PAYLOAD, len, padded);
    // Retired or replaced while we sealed: the keys we used may have been zeroed.
    if (this.keypairs.generation(slot) !== gen) return this.drop('key-expired');
    i32[w + F_OFFSET] = off - PAYLOAD;
    i32[w + F_LENGTH] = msgLen;
    i32[w + F_SEGMENT] = 0;
    this.countSent(peer, msgLen, 1);
    this.keepFresh(peer, slot, counter);
    return true;
  }

  /**
   * A TSO/USO super-packet: cut into segments that are sealed one after another
   * from the start of the slot's data area. All but the last have one size, so
   * the UDP writer sends the slot as one GSO message (SEGMENT = that size).
   */
  private sealSegments(r: PacketRing, w: number, data: number, pkt: number, len: number, h: VnetHeader): boolean {
    const u8 = r.u8;
    const n = segmentCount(u8, pkt, len, h);
    if (len > this.scratch.length) return this.drop('outgoing-malformed');
    // The segments overwrite the super-packet as they grow (each carries its own headers).
    this.scratch.set(u8.subarray(pkt, pkt + len));
    const src = this.scratch;
    const peer = routeOf(this.routes, src, 0);
    if (peer === undefined) return this.drop('no-route');
    const slot = this.sessionFor(peer);
    if (slot < 0 || !this.peers.readEndpoint(peer, r.i32, w + F_ADDR)) {
      if (slot >= 0) return this.drop('no-endpoint');
      for (let i = 0; i < n; i++) this.toMain(peer, this.spill, 0, writeSegment(src, 0, len, h, i, this.spill, 0));
      return false;
    }
    const gen = this.keypairs.generation(slot);
    const remote = this.keypairs.remoteIndex(slot);
    const end = data + r.dataBytes;
    let p = data;
    let segment = 0;
    let sent = 0;
    let counter = 0n;
    for (let i = 0; i < n; i++) {
      const segLen = writeSegment(src, 0, len, h, i, u8, p + PAYLOAD);
      const padded = paddedLength(segLen, this.mtu);
      if (p + PAYLOAD + padded + 16 > end) return this.drop('outgoing-malformed');
      counter = this.keypairs.nextSendCounter(slot);
      if (counter < 0n) {
        // The session ran out mid-packet: the rest waits for the next one on the main thread.
        for (let j = i; j < n; j++) this.toMain(peer, this.spill, 0, writeSegment(src, 0, len, h, j, this.spill, 0));
        break;
      }
      const msgLen = sealInPlace(this.keypairs, slot, remote, counter, u8, p, segLen, padded);
      if (i === 0) segment = msgLen;
      p += msgLen;
      sent++;
    }
    if (sent === 0) return false;
    if (this.keypairs.generation(slot) !== gen) return this.drop('key-expired');
    const i32 = r.i32;
    i32[w + F_OFFSET] = 0;
    i32[w + F_LENGTH] = p - data;
    i32[w + F_SEGMENT] = sent > 1 ? segment : 0;
    this.countSent(peer, p - data, sent);
    this.keepFresh(peer, slot, counter);
    return true;
  }

  /** The keypair slot to send to peer with, or -1 when the main thread must (handshake first). */
  private sessionFor(peer: number): number {
    const slot = this.peers.sendSlot(peer);
    return canSendWith(this.keypairs, slot, this.now()) ? slot : -1;
  }

  private countSent(peer: number, bytes: number, packets: number): void {
    const c = this.counters.base(this.index, peer);
    this.counters.f64[c + TX_BYTES]! += bytes;
    this.counters.f64[c + TX_DATA]! += packets;
  }

  private keepFresh(peer: number, slot: number, counter: bigint): void {
    if (rekeyAfterSending(this.keypairs, slot, counter + 1n, this.now())) this.askHandshake(peer);
  }

  // ---- ingress: datagram -> IP packet -----------------------------------------------

  private open(r: PacketRing, seq: number): boolean {
    if (this.dieInSlot) this.dieInSlot();
    const i32 = r.i32;
    const w = r.slotWord(seq);
    const u8 = r.u8;
    const off = i32[w + F_OFFSET]!;
    const len = i32[w + F_LENGTH]!;
    const msg = r.dataOffset(seq) + off;
    const kind = datagramKind(u8, msg, len);
    if (kind === 'transport') return this.openTransport(r, w, msg, len);
    if (kind === 'oversized' || kind === 'malformed') return this.drop(kind);
    if (!this.reserveMessage()) return this.drop('handshake-queue-full');
    const copy = u8.slice(msg, msg + len);
    this.post({ t: 'handshake', msg: copy, from: addressWords(i32, w) }, [copy.buffer]);
    return false;
  }

  private openTransport(r: PacketRing, w: number, msg: number, len: number): boolean {
    const i32 = r.i32;
    const u8 = r.u8;
    const kps = this.keypairs;
    const now = this.now();
    const why = openTransport(kps, this.indexMap, u8, msg, len, now, this.opened);
    if (why !== null) return this.drop(why);
    const { slot, gen, plain } = this.opened;
    const peer = kps.peerId(slot);
    const c = this.counters.base(this.index, peer);
    this.counters.f64[c + RX_BYTES]! += len;
    this.counters.f64[c + RX_AUTH]! += 1;
    const flags = kps.flags(slot);
    if (flags & KEYPAIR_UNCONFIRMED && kps.clearFlags(slot, KEYPAIR_UNCONFIRMED)) {
      this.post({ t: 'confirm', peer, slot, gen });
    }
    if (!this.peers.endpointEquals(peer, i32, w + F_ADDR) && this.peers.raise(peer, PEER_ROAMING)) {
      this.post({ t: 'roam', peer, from: addressWords(i32, w) });
    }
    if (rekeyAfterReceiving(kps, slot, now)) this.askHandshake(peer);
    if (plain === 0) return false; // a keepalive: nothing to deliver
    // Counted before the source check: authenticated data is owed a keepalive even when dropped below.
    this.counters.f64[c + RX_DATA]! += 1;
    const pkt = msg + PAYLOAD;
    const ipLen = checkInner(this.routes, u8, pkt, plain, peer);
    if (typeof ipLen !== 'number') return this.drop(ipLen);
    if (this.vnetHdr) {
      // Authenticated by WireGuard: the stack may skip verifying its checksums (the kernel's wireguard does the same).
      writePlainVnetHeader(u8, pkt - VNET_HDR_LEN, VNET_F_DATA_VALID);
      i32[w + F_OFFSET] = i32[w + F_OFFSET]! + PAYLOAD - VNET_HDR_LEN;
      i32[w + F_LENGTH] = ipLen + VNET_HDR_LEN;
    } else {
      i32[w + F_OFFSET] = i32[w + F_OFFSET]! + PAYLOAD;
      i32[w + F_LENGTH] = ipLen;
    }
    return true;
  }

  // ---- the main thread -----------------------------------------------------------

  private toMain(peer: number, u8: Uint8Array, pkt: number, len: number): boolean {
    if (!this.reserveMessage()) return this.drop('staged-overflow');
    const copy = u8.slice(pkt, pkt + len);
    this.post({ t: 'stage', peer, packet: copy }, [copy.buffer]);
    return false;
  }

  private askHandshake(peer: number): void {
    if (this.peers.raise(peer, PEER_WANTS_HANDSHAKE)) this.post({ t: 'rekey', peer });
  }

  /** Bounds the messages waiting for the main thread, so a flood cannot grow its queue. */
  private reserveMessage(): boolean {
    if (Atomics.add(this.control, CTL_INFLIGHT, 1) >= MAX_INFLIGHT) {
      Atomics.sub(this.control, CTL_INFLIGHT, 1);
      return false;
    }
    return true;
  }

  private drop(reason: DropReason): false {
    this.drops.add(reason);
    return false;
  }

  private refreshConfig(): void {
    this.configGen = Atomics.load(this.control, CTL_CONFIG_GEN);
    for (const m of this.readConfig()) {
      if (m.t === 'routes') {
        this.routes = new AllowedIps<number>();
        for (const e of m.entries) this.routes.insert(cidrOf(e), e.peer);
      } else if (m.t === 'peer-routes') {
        this.routes.removeByValue(m.peer);
        for (const e of m.entries) this.routes.insert(cidrOf(e), m.peer);
      } else if (m.t === 'crash') {
        this.dieInSlot = () => process.exit(70);
      }
    }
  }
}

function cidrOf(e: RouteEntry): Cidr {
  return { family: e.family, address: Buffer.from(e.address), prefix: e.prefix };
}

function addressWords(i32: Int32Array, w: number): number[] {
  const a = w + F_ADDR;
  return [i32[a]!, i32[a + 1]!, i32[a + 2]!, i32[a + 3]!, i32[a + 4]!, i32[a + 5]!, i32[a + 6]!];
}
