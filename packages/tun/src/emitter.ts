// A ring's consumer without a thread: the shards that finish slots send them
// themselves, on their own thread, instead of waking a writer pump to do it.
// A round trip then crosses one thread hand-off per direction (reader ->
// shard) where a writer pump adds a second (shard -> writer), and each
// hand-off is a futex wake, on a VM an inter-processor interrupt.
//
// Order is kept as with a pump: emitting is always from TAIL in sequence
// order, under the ring's consumer lock. A shard that finds the lock taken
// leaves its slots to the holder, which looks at TAIL again after letting go;
// a shard that finds TAIL unfinished leaves them to the shard that finishes
// TAIL. So every finished slot goes out, in order, with no thread waiting.
import { InlineStep } from './inline-step.js';
import type { PumpOptions } from './pump.js';
import type { PacketRing } from './ring.js';

export type EmitterKind = 'tunEmitter' | 'udpEmitter';

export class RingEmitter extends InlineStep<EmitterKind> {
  private constructor(kind: EmitterKind, fd: number, ring: PacketRing, options: PumpOptions) {
    super(kind, fd, ring, options);
  }

  /** EMIT slots written to the TUN queue `fd` (a tunWriter's work); the emitter keeps a dup of fd. */
  static tun(fd: number, ring: PacketRing, options: PumpOptions = {}): RingEmitter {
    return new RingEmitter('tunEmitter', fd, ring, options);
  }

  /** EMIT slots sent on the UDP socket `fd` (a udpWriter's work, GSO included); the emitter keeps a dup of fd. */
  static udp(fd: number, ring: PacketRing, options: PumpOptions = {}): RingEmitter {
    return new RingEmitter('udpEmitter', fd, ring, options);
  }

  /**
   * Sends every finished slot from TAIL on, in order, unless another consumer
   * is at it (it then sends these too). Call after finishing slots (ShardLane
   * publish). Returns how many slots it freed. Blocks for the syscalls only.
   */
  emit(): number {
    return this.closed ? 0 : this.native.emit();
  }
}
