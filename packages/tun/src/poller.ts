// A ring's producer without a thread, for run-to-completion shards: the shard
// waits on its own fds (pollIn), then read() fills free slots from the TUN
// queue or UDP socket on the shard's thread. No hand-off: the same thread
// transforms and emits the slots.
import { InlineStep, type StepOptions } from './inline-step.js';
import { native } from './native.js';
import type { PacketRing } from './ring.js';

export type PollerKind = 'tunPoller' | 'udpPoller';

export class RingPoller extends InlineStep<PollerKind> {
  private constructor(kind: PollerKind, fd: number, ring: PacketRing, options: StepOptions) {
    super(kind, fd, ring, options);
  }

  /** Packets read from the TUN queue `fd` into slots at OFFSET = the ring's headroom ; keeps a dup of fd. */
  static tun(fd: number, ring: PacketRing, options: StepOptions = {}): RingPoller {
    return new RingPoller('tunPoller', fd, ring, options);
  }

  /** Datagrams received on the UDP socket `fd` into slots at OFFSET = the ring's headroom, GRO split; keeps a dup of fd. */
  static udp(fd: number, ring: PacketRing, options: StepOptions = {}): RingPoller {
    return new RingPoller('udpPoller', fd, ring, options);
  }

  /** One batch (up to options.batch reads, or one recvmmsg) into free slots; never waits. Returns slots published. */
  read(): number {
    return this.closed ? 0 : this.native.read();
  }
}

/**
 * Blocks the calling thread (workers only) until fdA or fdB is readable, at
 * most timeoutMs. Returns a mask: 1 fdA, 2 fdB, 0 on timeout. A closed fd
 * throws a TunError (EBADF).
 */
export function pollIn(fdA: number, fdB: number, timeoutMs: number): number {
  return native.pollIn(fdA, fdB, timeoutMs);
}
