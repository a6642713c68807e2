// One data-plane shard: it transforms, in place, the ring slots it owns.
// Egress slots hold IP packets from the TUN and leave as transport messages
// for the UDP writer; ingress slots hold datagrams from the UDP reader and
// leave as IP packets for the TUN writer. Everything a shard needs lives in
// SharedArrayBuffers (keypairs, peers, receiver-index map, counters); what it
// cannot decide alone (handshakes, packets waiting for a session, a keypair's
// first use, roaming, rekeying) goes to the main thread as a message.
//
// The class is thread-agnostic: shard-worker.ts runs it in a piscina worker,
// tests may drive it directly.
import {
  Doorbell,
  PacketRing,
  RingEmitter,
  RingPoller,
  ShardLane,
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
import { AllowedIps, type Cidr, type IpFamily } from '../allowed-ips.js';
import {
  KEEPALIVE_TIMEOUT,
  MAX_MESSAGE_SIZE,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT_MIN_SIZE,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
} from '../constants.js';
import { IndexSlotMap } from '../index-table.js';
import { KEYPAIR_INITIATOR, KEYPAIR_UNCONFIRMED, KeypairTable } from '../keypair.js';
import { DropCounters, DROP_REASONS, type DropReason } from '../stats.js';
import { DECRYPT_FAILED, DECRYPT_REPLAY, openInPlace, paddedLength, sealInPlace } from './transport.js';
import { PEER_ROAMING, PEER_WANTS_HANDSHAKE, PeerCounters, PeerTable, RX_AUTH, RX_BYTES, RX_DATA, TX_BYTES, TX_DATA } from './peer-table.js';
import { CONTROL_WORDS, CTL_CLOSED, CTL_CONFIG_GEN, CTL_INFLIGHT, CTL_STARTED, MAX_INFLIGHT, SHARD_COUNTERS, type RouteEntry, type ShardInit, type ToMain, type ToShard } from './protocol.js';

// Slot header words a shard reads and writes (int32 index relative to the slot).
const F_OFFSET = SlotField.OFFSET >> 2;
const F_LENGTH = SlotField.LENGTH >> 2;
const F_ADDR = SlotField.FAMILY >> 2; // family, port, addr x4, scope: the layout PeerTable copies
const F_SEGMENT = SlotField.SEGMENT >> 2;
// Ingress slots settled together: a TUN write joins at most this many TCP segments.
const RUN_SLOTS = 64;
// The largest TUN read with offloads: a 64 KiB super-packet.
const MAX_SUPER_PACKET = 65535;

// How long an idle shard sleeps before looking again without a doorbell: a safety net only.
const IDLE_WAIT_MS = 200;
// How long a run-to-completion shard sleeps in poll() with no packet: bounds how late it sees CLOSED and new routes.
const RTC_WAIT_MS = 20;
const RTC_BATCH = 16;
const KEEP_FRESH_RECEIVING_MS = (REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) * 1000;

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
  private readonly doorbell: Doorbell;
  private readonly egress: ShardLane;
  private readonly ingress: ShardLane;
  // Sending what this shard finished, from this thread (see ShardInit.emit).
  private readonly udpOut: RingEmitter | null;
  private readonly tunOut: RingEmitter | null;
  // Run to completion: this shard's own reads (its TUN queue, its UDP socket).
  private readonly tunIn: RingPoller | null;
  private readonly udpIn: RingPoller | null;
  private readonly rtcFds: { tun: number; udp: number } | null;
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
    this.doorbell = Doorbell.wrap(init.doorbell);
    // Run to completion: the rings are this shard's alone (one lane).
    const lane = init.rtc ? 0 : init.index;
    this.egress = new ShardLane(PacketRing.wrap(init.egress), lane);
    this.ingress = new ShardLane(PacketRing.wrap(init.ingress), lane);
    this.udpOut = init.emit ? RingEmitter.udp(init.emit.udp, this.egress.ring) : null;
    this.tunOut = init.emit ? RingEmitter.tun(init.emit.tun, this.ingress.ring) : null;
    if (init.rtc && !init.emit) throw new TypeError('a run-to-completion shard needs fds to send on (init.emit)');
    this.rtcFds = init.rtc;
    // Each batch is emptied before the next read, so a batch only has to fit the ring: 16 TUN reads
    // (super-packets with offloads) and one recvmmsg of 16 (each up to ~45 GRO segments).
    this.tunIn = init.rtc ? RingPoller.tun(init.rtc.tun, this.egress.ring, { batch: Math.min(RTC_BATCH, this.egress.ring.capacity) }) : null;
    this.udpIn = init.rtc ? RingPoller.udp(init.rtc.udp, this.ingress.ring, { batch: Math.min(RTC_BATCH, this.ingress.ring.capacity) }) : null;
    this.refreshConfig();
  }

  private now(): number {
    return performance.now() + this.timeOffset;
  }

  /** Serves both rings until the plane closes. */
  run(): void {
    Atomics.or(this.control, CTL_STARTED, 1 << this.index);
    try {
      this.serve();
    } finally {
      this.udpOut?.close();
      this.tunOut?.close();
      this.tunIn?.close();
      this.udpIn?.close();
    }
  }

  private serve(): void {
    // A predecessor that died may have finished slots without sending them.
    this.udpOut?.emit();
    this.tunOut?.emit();
    if (this.rtcFds) return this.serveToCompletion(this.rtcFds);
    for (;;) {
      if (Atomics.load(this.control, CTL_CLOSED)) return;
      if (Atomics.load(this.control, CTL_CONFIG_GEN) !== this.configGen) this.refreshConfig();
      // Read before looking: a publish between the look and the sleep ends the sleep at once.
      const seen = this.doorbell.value();
      if (this.serveOnce() === 0) this.doorbell.wait(seen, IDLE_WAIT_MS);
    }
  }

  /**
   * Run to completion: wait on this shard's own fds, read a batch, transform and
   * send it, all on this thread. The poll is bounded so CLOSED and configuration
   * changes are seen within RTC_WAIT_MS even when no packet comes.
   */
  private serveToCompletion(fds: { tun: number; udp: number }): void {
    const tunIn = this.tunIn!;
    const udpIn = this.udpIn!;
    let ready = 3; // look at both first: a predecessor may have left packets waiting
    for (;;) {
      if (Atomics.load(this.control, CTL_CLOSED)) return;
      if (Atomics.load(this.control, CTL_CONFIG_GEN) !== this.configGen) this.refreshConfig();
      let read = 0;
      if (ready & 1) read += tunIn.read();
      if (ready & 2) read += udpIn.read();
      // Emitting never leaves a finished slot behind (a failed send is counted and freed), so the rings are empty again after this.
      if (read > 0) this.serveOnce();
      // After work, only ask which fd has more (no sleep); idle, sleep in poll.
      ready = pollIn(fds.tun, fds.udp, read > 0 ? 0 : RTC_WAIT_MS);
    }
  }

  /** One pass over both rings; returns the number of slots finished. */
  serveOnce(): number {
    // The counts include slots a crashed predecessor left BUSY, now DROP: they must leave the ring too.
    const e = this.egress.drain(this.sealSlot);
    if (e > 0) this.udpOut?.emit();
    const i = this.ingress.drainRuns(this.openSlot, this.settleIngress, RUN_SLOTS);
    if (i > 0) this.tunOut?.emit();
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
    const ipLen = ipLength(u8, pkt, len);
    const padded = paddedLength(len, this.mtu);
    if (ipLen === 0 || ipLen !== len || MESSAGE_TRANSPORT_MIN_SIZE + padded > MAX_MESSAGE_SIZE || off < 16 || off + padded + 16 > r.dataBytes) {
      return this.drop('outgoing-malformed');
    }
    const peer = this.route(u8, pkt);
    if (peer === undefined) return this.drop('no-route');
    const slot = this.sessionFor(peer);
    if (slot < 0) return this.toMain(peer, u8, pkt, len);
    const gen = this.keypairs.generation(slot);
    const counter = this.keypairs.nextSendCounter(slot);
    if (counter < 0n) return this.toMain(peer, u8, pkt, len);
    if (!this.peers.readEndpoint(peer, i32, w + F_ADDR)) return this.drop('no-endpoint');
    const msgLen = sealInPlace(this.keypairs, slot, this.keypairs.remoteIndex(slot), counter, u8, pkt - 16, len, padded);
    // Retired or replaced while we sealed: the keys we used may have been zeroed.
    if (this.keypairs.generation(slot) !== gen) return this.drop('key-expired');
    i32[w + F_OFFSET] = off - 16;
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
    const peer = this.route(src, 0);
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
      const segLen = writeSegment(src, 0, len, h, i, u8, p + 16);
      const padded = paddedLength(segLen, this.mtu);
      if (p + 32 + padded > end) return this.drop('outgoing-malformed');
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

  private route(b: Uint8Array, pkt: number): number | undefined {
    const family = (b[pkt]! >> 4) as IpFamily;
    if (family !== 4 && family !== 6) return undefined;
    return this.routes.lookup(family, b, pkt + (family === 4 ? 16 : 24));
  }

  /** The keypair slot to send to peer with, or -1 when the main thread must (handshake first). */
  private sessionFor(peer: number): number {
    const slot = this.peers.sendSlot(peer);
    if (slot < 0 || !this.keypairs.isLive(slot)) return -1;
    if (this.now() - this.keypairs.createdMs(slot) >= REJECT_AFTER_TIME * 1000) return -1;
    return slot;
  }

  private countSent(peer: number, bytes: number, packets: number): void {
    const c = this.counters.base(this.index, peer);
    this.counters.f64[c + TX_BYTES]! += bytes;
    this.counters.f64[c + TX_DATA]! += packets;
  }

  private keepFresh(peer: number, slot: number, counter: bigint): void {
    // Only the initiator rekeys on age: the clock is read for it alone.
    if (counter > REKEY_AFTER_MESSAGES || (this.keypairs.flags(slot) & KEYPAIR_INITIATOR && this.now() - this.keypairs.createdMs(slot) >= REKEY_AFTER_TIME * 1000)) {
      this.askHandshake(peer);
    }
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
    if (len > MAX_MESSAGE_SIZE) return this.drop('oversized');
    if (len < 4) return this.drop('malformed');
    const type = u8[msg]! | (u8[msg + 1]! << 8) | (u8[msg + 2]! << 16) | (u8[msg + 3]! << 24);
    if (type === 4) {
      if (len < MESSAGE_TRANSPORT_MIN_SIZE) return this.drop('malformed');
      return this.openTransport(r, w, msg, len);
    }
    if ((type === 1 && len === MESSAGE_INITIATION_SIZE) || (type === 2 && len === MESSAGE_RESPONSE_SIZE) || (type === 3 && len === MESSAGE_COOKIE_REPLY_SIZE)) {
      if (!this.reserveMessage()) return this.drop('handshake-queue-full');
      const copy = u8.slice(msg, msg + len);
      this.post({ t: 'handshake', msg: copy, from: addressWords(i32, w) }, [copy.buffer]);
      return false;
    }
    return this.drop('malformed');
  }

  private openTransport(r: PacketRing, w: number, msg: number, len: number): boolean {
    const i32 = r.i32;
    const u8 = r.u8;
    const receiver = (u8[msg + 4]! | (u8[msg + 5]! << 8) | (u8[msg + 6]! << 16) | (u8[msg + 7]! << 24)) >>> 0;
    const kps = this.keypairs;
    const slot = this.indexMap.slotOf(receiver);
    if (slot < 0 || kps.localIndex(slot) !== receiver || !kps.isLive(slot)) return this.drop('unknown-receiver');
    const gen = kps.generation(slot);
    const age = this.now() - kps.createdMs(slot);
    if (age >= REJECT_AFTER_TIME * 1000) return this.drop('key-expired');
    const plain = openInPlace(kps, slot, u8, msg, len);
    if (plain === DECRYPT_FAILED) return this.drop('transport-decrypt');
    if (plain === DECRYPT_REPLAY) return this.drop('replay');
    if (kps.generation(slot) !== gen) return this.drop('key-expired');
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
    if (flags & KEYPAIR_INITIATOR && age >= KEEP_FRESH_RECEIVING_MS) this.askHandshake(peer);
    if (plain === 0) return false; // a keepalive: nothing to deliver
    this.counters.f64[c + RX_DATA]! += 1;
    const pkt = msg + 16;
    const ipLen = ipLength(u8, pkt, plain);
    if (ipLen === 0) return this.drop('inner-malformed');
    const family = (u8[pkt]! >> 4) as IpFamily;
    if (this.routes.lookup(family, u8, pkt + (family === 4 ? 12 : 8)) !== peer) return this.drop('allowed-ips');
    if (this.vnetHdr) {
      // Authenticated by WireGuard: the stack may skip verifying its checksums (the kernel's wireguard does the same).
      writePlainVnetHeader(u8, pkt - VNET_HDR_LEN, VNET_F_DATA_VALID);
      i32[w + F_OFFSET] = i32[w + F_OFFSET]! + 16 - VNET_HDR_LEN;
      i32[w + F_LENGTH] = ipLen + VNET_HDR_LEN;
    } else {
      i32[w + F_OFFSET] = i32[w + F_OFFSET]! + 16;
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

/** The IP packet's own length (header-declared) when it fits in available bytes; 0 when malformed. */
function ipLength(u8: Uint8Array, p: number, available: number): number {
  if (available < 20) return 0;
  const v = u8[p]! >> 4;
  let len: number;
  if (v === 4) {
    if ((u8[p]! & 0x0f) < 5) return 0;
    len = (u8[p + 2]! << 8) | u8[p + 3]!;
    if (len < 20) return 0;
  } else if (v === 6) {
    if (available < 40) return 0;
    len = 40 + ((u8[p + 4]! << 8) | u8[p + 5]!);
  } else {
    return 0;
  }
  return len <= available ? len : 0;
}

function cidrOf(e: RouteEntry): Cidr {
  return { family: e.family, address: Buffer.from(e.address), prefix: e.prefix };
}

function addressWords(i32: Int32Array, w: number): number[] {
  const a = w + F_ADDR;
  return [i32[a]!, i32[a + 1]!, i32[a + 2]!, i32[a + 3]!, i32[a + 4]!, i32[a + 5]!, i32[a + 6]!];
}
