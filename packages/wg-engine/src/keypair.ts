// Transport keypairs (whitepaper 5.4.5) in a SharedArrayBuffer table, so data
// plane workers can encrypt and decrypt with no message to the main thread:
// keys, the send counter (allocated with Atomics.add, so no two threads ever
// use one nonce) and the replay window live in a slot. The main thread owns
// slot allocation, rotation (previous/current/next) and zeroing.
import { KEY_LEN, REJECT_AFTER_MESSAGES } from './constants.js';
import { REPLAY_WINDOW_BYTES, ReplayWindow } from './replay.js';

const SEND_KEY = 0;
const RECV_KEY = 32;
const COUNTER = 64; // u64
const CREATED = 72; // f64, monotonic ms
const STATE = 80; // i32: 0 free, 1 live
// Bumped on every install and retire, so a shard that read a slot can tell
// whether it was replaced under it (the kernel uses RCU for this).
const GEN = 84; // i32
const PEER = 88; // i32: the owning peer's id in the PeerTable
const LOCAL_INDEX = 92; // u32: our receiver index for it
const REMOTE_INDEX = 96; // u32: the peer's receiver index, written into every message we send
const FLAGS = 100; // i32: KEYPAIR_INITIATOR | KEYPAIR_UNCONFIRMED
const REPLAY = 128;
export const KEYPAIR_SLOT_BYTES = Math.ceil((REPLAY + REPLAY_WINDOW_BYTES) / 64) * 64;

/** We sent the initiation that made this keypair (only initiators rekey on time). */
export const KEYPAIR_INITIATOR = 1;
/** A responder's keypair not yet used by the initiator: it may receive but not send. */
export const KEYPAIR_UNCONFIRMED = 2;

export interface KeypairMeta {
  peerId: number;
  localIndex: number;
  remoteIndex: number;
  flags: number;
}

export class KeypairTable {
  readonly sab: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  private readonly u64: BigUint64Array;
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  // Made on first use: a table sized for many peers (and viewed again in every shard) would
  // otherwise hold a window object per slot from the start.
  private readonly replays: (ReplayWindow | undefined)[] = [];
  private readonly freeSlots: number[] = [];

  constructor(
    readonly capacity: number,
    sab?: SharedArrayBuffer,
  ) {
    this.sab = sab ?? new SharedArrayBuffer(capacity * KEYPAIR_SLOT_BYTES);
    this.bytes = new Uint8Array(this.sab);
    this.u64 = new BigUint64Array(this.sab);
    this.f64 = new Float64Array(this.sab);
    this.i32 = new Int32Array(this.sab);
    // Only the owner (the main thread) allocates; views made from an existing sab do not.
    if (!sab) for (let s = capacity - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  /** Installs fresh keys; returns the slot, or -1 when the table is full. */
  install(sendKey: Uint8Array, receiveKey: Uint8Array, createdMs: number, meta?: KeypairMeta): number {
    const slot = this.freeSlots.pop();
    if (slot === undefined) return -1;
    const base = slot * KEYPAIR_SLOT_BYTES;
    Atomics.add(this.i32, (base + GEN) / 4, 1);
    this.i32[(base + PEER) / 4] = meta?.peerId ?? -1;
    this.i32[(base + LOCAL_INDEX) / 4] = meta?.localIndex ?? 0;
    this.i32[(base + REMOTE_INDEX) / 4] = meta?.remoteIndex ?? 0;
    Atomics.store(this.i32, (base + FLAGS) / 4, meta?.flags ?? 0);
    this.bytes.set(sendKey, base + SEND_KEY);
    this.bytes.set(receiveKey, base + RECV_KEY);
    Atomics.store(this.u64, (base + COUNTER) / 8, 0n);
    this.f64[(base + CREATED) / 8] = createdMs;
    this.replay(slot).reset();
    Atomics.store(this.i32, (base + STATE) / 4, 1);
    return slot;
  }

  /** Zeroes the slot's keys and returns it to the free list. */
  retire(slot: number): void {
    const base = slot * KEYPAIR_SLOT_BYTES;
    Atomics.store(this.i32, (base + STATE) / 4, 0);
    Atomics.add(this.i32, (base + GEN) / 4, 1);
    this.bytes.fill(0, base, base + 2 * KEY_LEN);
    this.freeSlots.push(slot);
  }

  generation(slot: number): number {
    return Atomics.load(this.i32, (slot * KEYPAIR_SLOT_BYTES + GEN) / 4);
  }

  peerId(slot: number): number {
    return this.i32[(slot * KEYPAIR_SLOT_BYTES + PEER) / 4]!;
  }

  localIndex(slot: number): number {
    return this.i32[(slot * KEYPAIR_SLOT_BYTES + LOCAL_INDEX) / 4]! >>> 0;
  }

  remoteIndex(slot: number): number {
    return this.i32[(slot * KEYPAIR_SLOT_BYTES + REMOTE_INDEX) / 4]! >>> 0;
  }

  flags(slot: number): number {
    return Atomics.load(this.i32, (slot * KEYPAIR_SLOT_BYTES + FLAGS) / 4);
  }

  /** Clears flag bits; returns true for the one caller that cleared any of them. */
  clearFlags(slot: number, bits: number): boolean {
    const i = (slot * KEYPAIR_SLOT_BYTES + FLAGS) / 4;
    for (;;) {
      const old = Atomics.load(this.i32, i);
      if ((old & bits) === 0) return false;
      if (Atomics.compareExchange(this.i32, i, old, old & ~bits) === old) return true;
    }
  }

  isLive(slot: number): boolean {
    return Atomics.load(this.i32, (slot * KEYPAIR_SLOT_BYTES + STATE) / 4) === 1;
  }

  sendKey(slot: number): Uint8Array {
    const base = slot * KEYPAIR_SLOT_BYTES + SEND_KEY;
    return this.bytes.subarray(base, base + KEY_LEN);
  }

  receiveKey(slot: number): Uint8Array {
    const base = slot * KEYPAIR_SLOT_BYTES + RECV_KEY;
    return this.bytes.subarray(base, base + KEY_LEN);
  }

  createdMs(slot: number): number {
    return this.f64[(slot * KEYPAIR_SLOT_BYTES + CREATED) / 8]!;
  }

  /**
   * Allocates the next send counter; -1n once Reject-After-Messages is reached.
   * The counter is pinned there so it can never wrap back into used nonces.
   */
  nextSendCounter(slot: number): bigint {
    const i = (slot * KEYPAIR_SLOT_BYTES + COUNTER) / 8;
    const n = Atomics.add(this.u64, i, 1n);
    if (n >= REJECT_AFTER_MESSAGES) {
      Atomics.store(this.u64, i, REJECT_AFTER_MESSAGES);
      return -1n;
    }
    return n;
  }

  /** The next counter that would be used (for rekey decisions and tests). */
  sendCounter(slot: number): bigint {
    return Atomics.load(this.u64, (slot * KEYPAIR_SLOT_BYTES + COUNTER) / 8);
  }

  /** Test and fault-injection hook: jump the send counter. */
  setSendCounter(slot: number, value: bigint): void {
    Atomics.store(this.u64, (slot * KEYPAIR_SLOT_BYTES + COUNTER) / 8, value);
  }

  replay(slot: number): ReplayWindow {
    return (this.replays[slot] ??= new ReplayWindow(this.sab, slot * KEYPAIR_SLOT_BYTES + REPLAY));
  }

  get used(): number {
    return this.capacity - this.freeSlots.length;
  }
}

/** The main thread's handle on one keypair slot. */
export class Keypair<P = unknown> {
  constructor(
    readonly table: KeypairTable,
    readonly slot: number,
    readonly peer: P,
    readonly createdMs: number,
    readonly isInitiator: boolean,
    readonly localIndex: number,
    readonly remoteIndex: number,
  ) {}

  get sendCounter(): bigint {
    return this.table.sendCounter(this.slot);
  }
}
