// The ring layout is written twice, in native/ring.h (for the native pollers
// and emitters) and src/ring.ts (for the shard's SlotCursor). These tests hold
// the two against each other: by value, through the addon's ringLayout(),
// and by behaviour, a native poller filling a slot that ring.ts then reads.
import assert from 'node:assert/strict';
import { native } from '../src/native.js';
import {
  PacketRing,
  RING_CONTROL_BYTES,
  RING_MAGIC,
  RingCtl,
  RingPoller,
  SLOT_HEADER_BYTES,
  SlotField,
  SlotState,
  UdpSocket,
  slotBytesFor,
} from '../src/index.js';
import { NetnsLab, waitFor } from './lab.js';

const layout = native.ringLayout();

/** Each field's [start, end) in bytes; ADDR spans 16, DATA starts the data area. */
function spans(fields: Record<string, number>, width: Record<string, number>): [string, number, number][] {
  return Object.entries(fields).map(([name, at]) => [name, at, at + (width[name] ?? 4)]);
}

function assertDisjoint(what: string, list: [string, number, number][]): void {
  for (const [a, s1, e1] of list) {
    for (const [b, s2, e2] of list) if (a < b) assert.ok(e1 <= s2 || e2 <= s1, `${what}: ${a} [${s1}, ${e1}) overlaps ${b} [${s2}, ${e2})`);
  }
}

describe('ring layout: native/ring.h and src/ring.ts agree', () => {
  it('on the magic, the control block size and the slot header size', () => {
    assert.deepEqual([layout.magic, layout.controlBytes, layout.slotHeaderBytes], [RING_MAGIC, RING_CONTROL_BYTES, SLOT_HEADER_BYTES]);
  });

  it('on every control word ring.h knows', () => {
    assert.ok(Object.keys(layout.control).length >= 13, JSON.stringify(layout.control));
    for (const [name, at] of Object.entries(layout.control)) {
      assert.equal((RingCtl as Record<string, number>)[name], at, `RingCtl.${name}`);
    }
  });

  it('on every slot field ring.h knows, and the slot states', () => {
    for (const [name, at] of Object.entries(layout.slot)) {
      assert.equal((SlotField as Record<string, number>)[name], at, `SlotField.${name}`);
    }
    assert.deepEqual(layout.state, { ...SlotState });
  });

  it('with the words only ring.ts uses (CURSOR, AUX) clear of the others, and all inside their block', () => {
    const control = spans(RingCtl, {});
    assertDisjoint('control block', control);
    for (const [name, start, end] of control) {
      assert.ok(start % 4 === 0 && end <= RING_CONTROL_BYTES, `RingCtl.${name} [${start}, ${end}) in ${RING_CONTROL_BYTES} bytes`);
    }
    const { DATA, ...header } = SlotField;
    assert.equal(DATA, SLOT_HEADER_BYTES);
    const slot = spans(header, { ADDR: 16 });
    assertDisjoint('slot header', slot);
    for (const [name, start, end] of slot) assert.ok(start % 4 === 0 && end <= SLOT_HEADER_BYTES, `SlotField.${name}`);
  });

  describe('by behaviour', () => {
    let lab: NetnsLab;
    before(() => {
      lab = NetnsLab.create();
      lab.ip('link', 'set', 'lo', 'up');
    });
    after(() => lab?.destroy());

    it('a native poller fills the slot ring.ts reads: headroom, OFFSET, LENGTH, address, SEQ, STATE and the counters', async () => {
      const HEADROOM = 40;
      const ring = PacketRing.create({ capacity: 4, slotBytes: slotBytesFor(300, { headroom: HEADROOM }), headroom: HEADROOM });
      // Stale values, as a reused slot holds them: the poller must set what it owns.
      for (let seq = 0; seq < ring.capacity; seq++) {
        ring.setSegment(seq, 777);
        ring.setGather(seq, 5);
        ring.setPacket(seq, 3, 3);
      }
      const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
      const sender = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
      const poller = RingPoller.udp(socket.fd, ring, { gro: false });
      try {
        const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 11) & 0xff);
        assert.equal(sender.sendTo(bytes, 4, Uint8Array.of(127, 0, 0, 1), socket.port), true);
        await waitFor('the datagram in the ring', () => (poller.read() === 1 ? true : undefined));
        assert.equal(ring.state(0), SlotState.FILLED);
        assert.deepEqual([ring.storedSeq(0), ring.offset(0), ring.length(0), ring.segment(0), ring.gather(0)], [0, HEADROOM, 300, 0, 0]);
        assert.deepEqual([...ring.packet(0)], [...bytes]);
        const from = ring.peer(0);
        assert.deepEqual([from.family, from.port, [...from.addr.subarray(0, 4)], from.scope], [4, sender.port, [127, 0, 0, 1], 0]);
        assert.deepEqual([ring.stats().produced, ring.stats().head, ring.stats().tail], [1, 1, 0]);
      } finally {
        poller.close();
        socket.close();
        sender.close();
      }
    });
  });
});
