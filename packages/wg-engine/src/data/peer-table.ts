// What shards need to know about each peer, in a SharedArrayBuffer the main
// thread writes and shards read: the keypair to send with and where to send.
// Everything else about a peer (handshake, timers, staging) stays on the main
// thread. Peers are named by a small integer id the Device hands out.
//
// Record layout (Int32 words):
//   0  SEND_SLOT  keypair slot to encrypt with, -1 for none (no confirmed session)
//   1  EP_SEQ     endpoint seqlock: odd while the main thread rewrites it
//   2  EP_FAMILY  0 none, 4, 6
//   3  EP_PORT
//   4..7 EP_ADDR  16 bytes
//   8  EP_SCOPE
//   9  FLAGS      PEER_WANTS_HANDSHAKE | PEER_ROAMING: requests a shard raised and the main thread clears
import type { Endpoint } from '../endpoint.js';

const WORDS = 16;
const SEND_SLOT = 0;
const EP_SEQ = 1;
const EP_FAMILY = 2;
const EP_PORT = 3;
const EP_ADDR = 4;
const EP_SCOPE = 8;
const FLAGS = 9;

export const PEER_WANTS_HANDSHAKE = 1;
export const PEER_ROAMING = 2;

export interface EndpointView {
  family: 0 | 4 | 6;
  port: number;
  /** 16 bytes; IPv4 in the first 4. */
  addr: Uint8Array;
  scope: number;
}

export class PeerTable {
  readonly i32: Int32Array;
  private readonly u8: Uint8Array;

  constructor(
    readonly capacity: number,
    sab?: SharedArrayBuffer,
  ) {
    const buf = sab ?? new SharedArrayBuffer(capacity * WORDS * 4);
    this.i32 = new Int32Array(buf);
    this.u8 = new Uint8Array(buf);
    if (!sab) for (let id = 0; id < capacity; id++) this.i32[id * WORDS + SEND_SLOT] = -1;
  }

  get sab(): SharedArrayBuffer {
    return this.i32.buffer as SharedArrayBuffer;
  }

  // ---- main thread -----------------------------------------------------------

  setSendSlot(id: number, slot: number): void {
    Atomics.store(this.i32, id * WORDS + SEND_SLOT, slot);
  }

  setEndpoint(id: number, ep: Endpoint | null): void {
    const b = id * WORDS;
    Atomics.add(this.i32, b + EP_SEQ, 1);
    if (!ep) {
      this.i32[b + EP_FAMILY] = 0;
    } else {
      const bytes = ep.bytes; // address then port
      const addrLen = bytes.length - 2;
      this.u8.fill(0, (b + EP_ADDR) * 4, (b + EP_ADDR) * 4 + 16);
      this.u8.set(bytes.subarray(0, addrLen), (b + EP_ADDR) * 4);
      this.i32[b + EP_PORT] = ep.port;
      this.i32[b + EP_SCOPE] = scopeOf(ep.address);
      this.i32[b + EP_FAMILY] = ep.family;
    }
    Atomics.add(this.i32, b + EP_SEQ, 1);
  }

  /** Clears a request flag once the main thread acts on it, so shards may raise it again. */
  clear(id: number, flag: number): void {
    Atomics.and(this.i32, id * WORDS + FLAGS, ~flag);
  }

  reset(id: number): void {
    this.setSendSlot(id, -1);
    this.setEndpoint(id, null);
    Atomics.store(this.i32, id * WORDS + FLAGS, 0);
  }

  // ---- shards ----------------------------------------------------------------

  sendSlot(id: number): number {
    return Atomics.load(this.i32, id * WORDS + SEND_SLOT);
  }

  /** Copies the endpoint into a ring slot's address fields (dst words: family, port, addr x4, scope); false when none. */
  readEndpoint(id: number, dst: Int32Array, at: number): boolean {
    const b = id * WORDS;
    for (;;) {
      const seq = Atomics.load(this.i32, b + EP_SEQ);
      if (seq & 1) continue;
      const family = this.i32[b + EP_FAMILY]!;
      dst[at] = family;
      dst[at + 1] = this.i32[b + EP_PORT]!;
      dst[at + 2] = this.i32[b + EP_ADDR]!;
      dst[at + 3] = this.i32[b + EP_ADDR + 1]!;
      dst[at + 4] = this.i32[b + EP_ADDR + 2]!;
      dst[at + 5] = this.i32[b + EP_ADDR + 3]!;
      dst[at + 6] = this.i32[b + EP_SCOPE]!;
      if (Atomics.load(this.i32, b + EP_SEQ) === seq) return family !== 0;
    }
  }

  /** True when the endpoint equals the address words at src[at..] (family, port, addr x4). */
  endpointEquals(id: number, src: Int32Array, at: number): boolean {
    const b = id * WORDS;
    return (
      this.i32[b + EP_FAMILY] === src[at] &&
      this.i32[b + EP_PORT] === src[at + 1] &&
      this.i32[b + EP_ADDR] === src[at + 2] &&
      this.i32[b + EP_ADDR + 1] === src[at + 3] &&
      this.i32[b + EP_ADDR + 2] === src[at + 4] &&
      this.i32[b + EP_ADDR + 3] === src[at + 5]
    );
  }

  /** Raises a request flag; true for the one caller that raised it (so the main thread hears once). */
  raise(id: number, flag: number): boolean {
    return (Atomics.or(this.i32, id * WORDS + FLAGS, flag) & flag) === 0;
  }
}

function scopeOf(address: string): number {
  const pct = address.indexOf('%');
  if (pct < 0) return 0;
  const n = Number(address.slice(pct + 1));
  return Number.isInteger(n) ? n : 0;
}

/** Per-peer traffic counters, one row per shard so each has a single writer (plain stores, no atomics). */
export const PEER_COUNTERS = ['txBytes', 'txData', 'rxBytes', 'rxAuth', 'rxData'] as const;
export type PeerCounter = (typeof PEER_COUNTERS)[number];
const C = PEER_COUNTERS.length;
export const TX_BYTES = 0;
export const TX_DATA = 1;
export const RX_BYTES = 2;
export const RX_AUTH = 3;
export const RX_DATA = 4;

export class PeerCounters {
  readonly f64: Float64Array;

  constructor(
    readonly capacity: number,
    readonly shards: number,
    sab?: SharedArrayBuffer,
  ) {
    this.f64 = new Float64Array(sab ?? new SharedArrayBuffer(capacity * shards * C * 8));
  }

  get sab(): SharedArrayBuffer {
    return this.f64.buffer as SharedArrayBuffer;
  }

  /** Index of (shard, peer, counter 0) for a shard's own writes. */
  base(shard: number, id: number): number {
    return (shard * this.capacity + id) * C;
  }

  /** Sum over shards of one counter. */
  total(id: number, counter: number): number {
    let t = 0;
    for (let s = 0; s < this.shards; s++) t += this.f64[(s * this.capacity + id) * C + counter]!;
    return t;
  }
}
