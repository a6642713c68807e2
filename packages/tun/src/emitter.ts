// A ring's consumer without a thread: the shard that finished slots sends
// them itself, on its own thread, right after transforming its batch. (Writer
// threads were tried first: a second thread hand-off per direction, each a
// futex wake, on a VM an inter-processor interrupt.)
//
// Order is kept: emitting is always from TAIL in sequence order, under the
// ring's consumer lock, and stops at the first slot not finished.
import { InlineStep, type StepOptions } from './inline-step.js';
import type { PacketRing } from './ring.js';

export type EmitterKind = 'tunEmitter' | 'udpEmitter';

export class RingEmitter extends InlineStep<EmitterKind> {
  private constructor(kind: EmitterKind, fd: number, ring: PacketRing, options: StepOptions) {
    super(kind, fd, ring, options);
  }

  /**
   * EMIT slots written to the TUN queue `fd` in sequence order, OFFSET/LENGTH as they are (on an
   * offloading Tun the shard puts the 10-byte virtio_net_hdr right before the packet and includes
   * it); a slot with GATHER set is written joined with the slots it gathers. Keeps a dup of fd.
   */
  static tun(fd: number, ring: PacketRing, options: StepOptions = {}): RingEmitter {
    return new RingEmitter('tunEmitter', fd, ring, options);
  }

  /**
   * EMIT slots sent on the UDP socket `fd` in sequence order to their FAMILY/ADDR/PORT. A slot
   * whose SEGMENT is set and smaller than LENGTH holds datagrams of SEGMENT bytes back to back (the
   * last may be shorter): they go out as UDP GSO messages (at most 64 datagrams and 65507 bytes
   * each), or one by one without GSO (options.gso false). Keeps a dup of fd.
   */
  static udp(fd: number, ring: PacketRing, options: StepOptions = {}): RingEmitter {
    return new RingEmitter('udpEmitter', fd, ring, options);
  }

  /**
   * Sends every finished slot from TAIL on, in order, unless another consumer
   * is at it (it then sends these too). Call after finishing slots (SlotCursor
   * publish). Returns how many slots it freed. Blocks for the syscalls only.
   */
  emit(): number {
    return this.closed ? 0 : this.native.emit();
  }
}
