// A JS producer and consumer of a packet ring, for the tests of the ring's own
// bookkeeping (claiming, recovery, runs, gathering) where the native poller and
// emitter would only add a socket. Production uses those two only.
import { PacketRing, RingCtl, SlotField, SlotState } from '../src/ring.js';

const W = (byteOffset: number): number => byteOffset >> 2;

/** Where a packet came from (producer) or goes to (shard, for the consumer). */
export interface PacketAddress {
  family: 4 | 6;
  port: number;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
  scope?: number;
}

/**
 * Publishes one packet at HEAD, stored at `offset` in the slot's data area
 * (default: the ring's headroom, where the native pollers store it).
 * False (and DROPS_FULL counted) when the slot at HEAD is not FREE or the
 * packet does not fit: a full ring drops, it never blocks. Single producer only.
 */
export function produce(ring: PacketRing, bytes: Uint8Array, offset = ring.headroom, addr?: PacketAddress): boolean {
  const i32 = ring.i32;
  const head = Atomics.load(i32, W(RingCtl.HEAD));
  if (ring.state(head) !== SlotState.FREE || offset < 0 || offset + bytes.length > ring.dataBytes) {
    Atomics.add(i32, W(RingCtl.DROPS_FULL), 1);
    return false;
  }
  ring.u8.set(bytes, ring.dataOffset(head) + offset);
  const w = ring.slotWord(head);
  i32[w + W(SlotField.OFFSET)] = offset;
  i32[w + W(SlotField.LENGTH)] = bytes.length;
  i32[w + W(SlotField.SEGMENT)] = 0;
  i32[w + W(SlotField.GATHER)] = 0;
  if (addr) ring.setPeer(head, addr);
  else i32[w + W(SlotField.FAMILY)] = 0;
  i32[w + W(SlotField.SEQ)] = head;
  Atomics.store(i32, w + W(SlotField.STATE), SlotState.FILLED);
  Atomics.store(i32, W(RingCtl.HEAD), (head + 1) | 0);
  Atomics.add(i32, W(RingCtl.PRODUCED), 1);
  return true;
}

/**
 * Emits finished slots from TAIL in sequence order: `emit(packet, seq)` for
 * each EMIT slot (return false to count an emit error), DROP slots are
 * skipped and counted; each slot is then FREE again. A slot with SEGMENT set
 * is handed over whole (`ring.segment(seq)` tells how to cut it); a slot with GATHER set
 * is handed over joined with the slots it gathers, as one packet (a copy). Stops at the
 * first slot a shard has not finished, or after `max`. Returns how many slots it freed.
 * The packet view is only valid inside the call. Single consumer only.
 */
export function consume(ring: PacketRing, emit: (packet: Uint8Array, seq: number) => boolean, max = Infinity): number {
  const i32 = ring.i32;
  let tail = Atomics.load(i32, W(RingCtl.TAIL));
  let n = 0;
  let emitted = 0;
  let failed = 0;
  let dropped = 0;
  while (n < max) {
    const state = ring.state(tail);
    const gather = state === SlotState.EMIT ? ring.gather(tail) : 0;
    if (gather > 0) {
      // Shards finish a gathered run last slot first: its head done means the whole run is.
      const parts = Array.from({ length: gather + 1 }, (_, k) => ring.packet((tail + k) | 0));
      if (emit(Buffer.concat(parts), tail)) emitted += gather + 1;
      else failed += gather + 1;
      for (let k = 0; k < gather; k++) {
        ring.setState(tail, SlotState.FREE);
        tail = (tail + 1) | 0;
        n++;
      }
    } else if (state === SlotState.EMIT) {
      if (emit(ring.packet(tail), tail)) emitted++;
      else failed++;
    } else if (state === SlotState.DROP) {
      dropped++;
    } else {
      break;
    }
    ring.setState(tail, SlotState.FREE);
    tail = (tail + 1) | 0;
    n++;
  }
  if (n > 0) {
    Atomics.store(i32, W(RingCtl.TAIL), tail);
    Atomics.add(i32, W(RingCtl.EMITTED), emitted);
    Atomics.add(i32, W(RingCtl.EMIT_ERRORS), failed);
    Atomics.add(i32, W(RingCtl.DROPPED), dropped);
  }
  return n;
}
