// Packet rings in a SharedArrayBuffer: the layout shared by the native pollers
// and emitters (native/ring.h, checked against this file by
// test/ring-layout.test.ts) and the shard that transforms slots (SlotCursor).
// A poller fills slots in sequence order, the shard transforms them in place,
// an emitter sends them in sequence order; in a run-to-completion shard all
// three run on one thread, one after the other. The ring lives in shared
// memory so that a shard restarted after a crash (a new worker) finds what its
// predecessor left. Sequence numbers are uint32 that wrap; in JS they are kept
// as int32 (`| 0`) and compared with `((a - b) | 0) < 0`.
import { VNET_HDR_LEN } from './gso.js';

export const RING_MAGIC = 0x57435247;
/** Bytes before the first slot. */
export const RING_CONTROL_BYTES = 256;
/** Bytes of a slot's header; its data area follows. */
export const SLOT_HEADER_BYTES = 64;

/** Byte offsets of the control block's int32 words. */
export const RingCtl = {
  MAGIC: 0,
  CAPACITY: 4,
  SLOT_BYTES: 8,
  CLOSED: 20,
  /** Where pollers store a packet in a slot's data area: the creator's headroom. */
  HEADROOM: 24,
  HEAD: 64,
  TAIL: 128,
  /** 1 while a consumer (the shard's RingEmitter) emits from TAIL. */
  CONSUMER_LOCK: 136,
  DROPS_FULL: 196,
  PRODUCED: 200,
  EMITTED: 204,
  EMIT_ERRORS: 208,
  DROPPED: 212,
  /** Where the shard's SlotCursor resumes (JS only). */
  CURSOR: 224,
} as const;

/** Byte offsets inside a slot. */
export const SlotField = {
  STATE: 0,
  SEQ: 4,
  OFFSET: 8,
  LENGTH: 12,
  /** 0 none, 4 IPv4, 6 IPv6: the source on receive, the destination on send. */
  FAMILY: 16,
  PORT: 20,
  /** 16 bytes; IPv4 in the first 4. */
  ADDR: 24,
  SCOPE: 40,
  /** Free for the shard; producers and consumers never read it. */
  AUX: 44,
  /**
   * UDP ring: 0, or the size of each of several datagrams laid back to back in
   * the slot's LENGTH bytes (the last may be shorter); the UDP emitter sends them
   * as UDP GSO messages or one by one. Producers store 0.
   */
  SEGMENT: 48,
  /**
   * TUN ring: 0, or how many following slots the consumer appends to this
   * slot's bytes in the same write (TCP coalescing, gro.ts). Those slots are
   * DROP, so no consumer ever writes them alone. Producers store 0.
   */
  GATHER: 52,
  DATA: 64,
} as const;

export const SlotState = { FREE: 0, FILLED: 1, BUSY: 2, EMIT: 3, DROP: 4 } as const;
export type SlotState = (typeof SlotState)[keyof typeof SlotState];

const W = (byteOffset: number): number => byteOffset >> 2;

/** The largest read from a TUN opened with offloads: the 10-byte virtio_net_hdr and a 64 KiB super-packet. */
export const OFFLOAD_READ_BYTES = VNET_HDR_LEN + 65535;

/** Room a caller wants around each packet in a slot's data area. */
export interface SlotRoom {
  /** Bytes before the packet (where readers store it: the ring's headroom). Default 0. */
  headroom?: number;
  /** Bytes after it, for whatever the shards append. Default 0. */
  tailroom?: number;
}

/**
 * Slot size for packets of up to `packetBytes` bytes (an MTU, or
 * OFFLOAD_READ_BYTES): the 64-byte header, then headroom, packet and
 * tailroom, rounded up to 64.
 */
export function slotBytesFor(packetBytes: number, room: SlotRoom = {}): number {
  const { headroom = 0, tailroom = 0 } = room;
  if (!Number.isInteger(packetBytes) || packetBytes < 1 || packetBytes > OFFLOAD_READ_BYTES) {
    throw new RangeError(`packetBytes must be 1 to ${OFFLOAD_READ_BYTES}, got ${packetBytes}`);
  }
  for (const [name, v] of [
    ['headroom', headroom],
    ['tailroom', tailroom],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 1 << 20) throw new RangeError(`${name} must be 0 to ${1 << 20} bytes, got ${v}`);
  }
  return SLOT_HEADER_BYTES + Math.ceil((headroom + packetBytes + tailroom) / 64) * 64;
}

export interface PacketRingOptions {
  /** Slots, a power of two from 2 to 65536. */
  capacity: number;
  /** Bytes per slot including its 64-byte header, a multiple of 64 (see slotBytesFor). */
  slotBytes: number;
  /** Where pollers store each packet in a slot's data area (the room before it for the shard); less than the data area. Default 0. */
  headroom?: number;
}

export interface RingStats {
  produced: number;
  emitted: number;
  dropsFull: number;
  dropped: number;
  emitErrors: number;
  head: number;
  tail: number;
}

/** A peer address as slots hold it. `addr` has 16 bytes (IPv4 in the first 4). */
export interface SlotPeer {
  family: 0 | 4 | 6;
  port: number;
  addr: Uint8Array;
  scope: number;
}

export class PacketRing {
  readonly sab: SharedArrayBuffer;
  /** The whole buffer as int32 words (control block and slot headers). */
  readonly i32: Int32Array;
  /** The whole buffer as bytes (slot data). */
  readonly u8: Uint8Array;
  readonly capacity: number;
  readonly mask: number;
  readonly slotBytes: number;
  readonly headroom: number;

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.i32 = new Int32Array(sab);
    this.u8 = new Uint8Array(sab);
    if (sab.byteLength < RING_CONTROL_BYTES || Atomics.load(this.i32, W(RingCtl.MAGIC)) !== RING_MAGIC) {
      throw new TypeError('not a packet ring: the SharedArrayBuffer has no ring control block');
    }
    this.capacity = this.i32[W(RingCtl.CAPACITY)]!;
    this.mask = this.capacity - 1;
    this.slotBytes = this.i32[W(RingCtl.SLOT_BYTES)]!;
    this.headroom = this.i32[W(RingCtl.HEADROOM)]!;
    if (RING_CONTROL_BYTES + this.capacity * this.slotBytes > sab.byteLength) {
      throw new TypeError('not a packet ring: the buffer is smaller than its layout');
    }
  }

  static create(options: PacketRingOptions): PacketRing {
    const { capacity, slotBytes, headroom = 0 } = options;
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 65536 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`capacity must be a power of two from 2 to 65536, got ${capacity}`);
    }
    if (!Number.isInteger(slotBytes) || slotBytes < 128 || slotBytes % 64 !== 0) {
      throw new RangeError(`slotBytes must be a multiple of 64, at least 128, got ${slotBytes}`);
    }
    if (!Number.isInteger(headroom) || headroom < 0 || headroom >= slotBytes - SLOT_HEADER_BYTES) {
      throw new RangeError(`headroom must be 0 to ${slotBytes - SLOT_HEADER_BYTES - 1} bytes for ${slotBytes}-byte slots, got ${headroom}`);
    }
    const sab = new SharedArrayBuffer(RING_CONTROL_BYTES + capacity * slotBytes);
    const i32 = new Int32Array(sab);
    i32[W(RingCtl.CAPACITY)] = capacity;
    i32[W(RingCtl.SLOT_BYTES)] = slotBytes;
    i32[W(RingCtl.HEADROOM)] = headroom;
    Atomics.store(i32, W(RingCtl.MAGIC), RING_MAGIC);
    return new PacketRing(sab);
  }

  /** A view of a ring made elsewhere (e.g. passed to a worker). */
  static wrap(sab: SharedArrayBuffer): PacketRing {
    if (!(sab instanceof SharedArrayBuffer)) throw new TypeError('PacketRing.wrap expects a SharedArrayBuffer');
    return new PacketRing(sab);
  }

  /** Bytes of a slot's data area. */
  get dataBytes(): number {
    return this.slotBytes - SLOT_HEADER_BYTES;
  }

  /** Byte offset of the slot that holds `seq` (its header). */
  slotOffset(seq: number): number {
    return RING_CONTROL_BYTES + (seq & this.mask) * this.slotBytes;
  }

  /** int32 index of the slot header of `seq`; add SlotField.X >> 2 for a field. */
  slotWord(seq: number): number {
    return (RING_CONTROL_BYTES + (seq & this.mask) * this.slotBytes) >> 2;
  }

  /** Byte offset of the slot's data area; a packet is at dataOffset + OFFSET. */
  dataOffset(seq: number): number {
    return this.slotOffset(seq) + SLOT_HEADER_BYTES;
  }

  state(seq: number): SlotState {
    return Atomics.load(this.i32, this.slotWord(seq)) as SlotState;
  }

  setState(seq: number, state: SlotState): void {
    Atomics.store(this.i32, this.slotWord(seq), state);
  }

  /** The SEQ the producer stored in the slot (equals `seq` while that packet occupies it). */
  storedSeq(seq: number): number {
    return this.i32[this.slotWord(seq) + W(SlotField.SEQ)]!;
  }

  offset(seq: number): number {
    return this.i32[this.slotWord(seq) + W(SlotField.OFFSET)]!;
  }

  length(seq: number): number {
    return this.i32[this.slotWord(seq) + W(SlotField.LENGTH)]!;
  }

  /** Sets what the consumer will emit: `length` bytes at `offset` of the data area. */
  setPacket(seq: number, offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.dataBytes) {
      throw new RangeError(`packet [${offset}, ${offset + length}) does not fit a ${this.dataBytes}-byte slot`);
    }
    const w = this.slotWord(seq);
    this.i32[w + W(SlotField.OFFSET)] = offset;
    this.i32[w + W(SlotField.LENGTH)] = length;
  }

  /** The slot's packet (OFFSET/LENGTH) as a view into the ring: valid until the slot is freed. */
  packet(seq: number): Uint8Array {
    const at = this.dataOffset(seq) + this.offset(seq);
    return this.u8.subarray(at, at + this.length(seq));
  }

  /** The slot's whole data area as a view. */
  data(seq: number): Uint8Array {
    const at = this.dataOffset(seq);
    return this.u8.subarray(at, at + this.dataBytes);
  }

  /** SEGMENT: 0 (one packet) or the size of each datagram the slot holds back to back. */
  segment(seq: number): number {
    return this.i32[this.slotWord(seq) + W(SlotField.SEGMENT)]!;
  }

  setSegment(seq: number, bytes: number): void {
    this.i32[this.slotWord(seq) + W(SlotField.SEGMENT)] = bytes;
  }

  /** GATHER: how many following slots are appended to this one's packet in one write. */
  gather(seq: number): number {
    return this.i32[this.slotWord(seq) + W(SlotField.GATHER)]!;
  }

  setGather(seq: number, slots: number): void {
    this.i32[this.slotWord(seq) + W(SlotField.GATHER)] = slots;
  }

  aux(seq: number): number {
    return this.i32[this.slotWord(seq) + W(SlotField.AUX)]!;
  }

  setAux(seq: number, value: number): void {
    this.i32[this.slotWord(seq) + W(SlotField.AUX)] = value;
  }

  /** The slot's address (a copy). */
  peer(seq: number): SlotPeer {
    const w = this.slotWord(seq);
    const at = this.slotOffset(seq) + SlotField.ADDR;
    return {
      family: this.i32[w + W(SlotField.FAMILY)] as 0 | 4 | 6,
      port: this.i32[w + W(SlotField.PORT)]!,
      addr: this.u8.slice(at, at + 16),
      scope: this.i32[w + W(SlotField.SCOPE)]!,
    };
  }

  setPeer(seq: number, peer: { family: 0 | 4 | 6; port: number; addr: Uint8Array; scope?: number }): void {
    const w = this.slotWord(seq);
    const at = this.slotOffset(seq) + SlotField.ADDR;
    this.i32[w + W(SlotField.FAMILY)] = peer.family;
    this.i32[w + W(SlotField.PORT)] = peer.port;
    this.u8.fill(0, at, at + 16);
    this.u8.set(peer.addr.subarray(0, peer.family === 4 ? 4 : 16), at);
    this.i32[w + W(SlotField.SCOPE)] = peer.scope ?? 0;
  }

  get head(): number {
    return Atomics.load(this.i32, W(RingCtl.HEAD));
  }

  get tail(): number {
    return Atomics.load(this.i32, W(RingCtl.TAIL));
  }

  get closed(): boolean {
    return Atomics.load(this.i32, W(RingCtl.CLOSED)) !== 0;
  }

  /** Counters as uint32 (they wrap). */
  stats(): RingStats {
    const u = (at: number): number => Atomics.load(this.i32, W(at)) >>> 0;
    return {
      produced: u(RingCtl.PRODUCED),
      emitted: u(RingCtl.EMITTED),
      dropsFull: u(RingCtl.DROPS_FULL),
      dropped: u(RingCtl.DROPPED),
      emitErrors: u(RingCtl.EMIT_ERRORS),
      head: u(RingCtl.HEAD),
      tail: u(RingCtl.TAIL),
    };
  }

  /** Sets CLOSED: pollers read and emitters send no more. Idempotent; never blocks. */
  close(): void {
    Atomics.store(this.i32, W(RingCtl.CLOSED), 1);
  }
}
