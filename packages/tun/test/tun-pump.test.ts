import assert from 'node:assert/strict';
import { Doorbell, PacketRing, RingPump, slotBytesFor } from '../src/index.js';
import { NetnsLab, waitFor } from './lab.js';
import { openLabTun, pingPeer, startEchoPipeline } from './tun-lab.js';

describe('TUN pumps', () => {
  let lab: NetnsLab;
  const open = () => openLabTun(lab, { mtu: 1420 });

  before(() => {
    lab = NetnsLab.create();
  });
  after(() => lab?.destroy());

  it('answers ping through tunReader -> worker shard (echo request to reply, written by the shard) with 0% loss', async () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 256, slotBytes: slotBytesFor(tun.mtu) });
    const { doorbell, reader, shard } = startEchoPipeline({ tun, queue: 0 }, ring);
    let emitted: number;
    try {
      await shard.ready;
      await pingPeer(lab, 20);
      const r = reader.stats();
      assert.ok(r.packets >= 20, JSON.stringify(r));
      assert.equal(r.dropsFull + r.truncated + r.errors, 0);
      emitted = ring.stats().emitted;
    } finally {
      ring.close(doorbell);
      tun.close();
    }
    assert.equal(reader.running, false, 'Tun.close() stops its pumps');
    assert.equal(await shard.exited, 0);
    // The shard's emitter writes to the TUN through its own fd: the interface goes with the last one.
    assert.ok(!lab.linkNames().includes(tun.name), 'the interface is gone once the Tun, its pumps and the shard are closed');
    const w = (await shard.result).emitter!;
    assert.ok(w.packets >= 20 && w.errors === 0, JSON.stringify(w));
    assert.ok(w.packets >= emitted, `the shard wrote ${w.packets}, the ring counted ${emitted} before it closed`);
  });

  it('keeps one reader per queue: onPackets and a tunReader exclude each other', () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 16, slotBytes: slotBytesFor(1420) });
    const doorbell = Doorbell.create();
    try {
      const reader = RingPump.tunReader({ tun }, ring, doorbell);
      assert.throws(() => tun.onPackets(() => {}), /has a RingPump reading its queues/);
      assert.throws(() => RingPump.tunReader({ tun }, ring, doorbell), /already has a tunReader pump/);
      assert.throws(() => RingPump.tunReader({ tun, queue: 1 }, ring, doorbell), RangeError);
      reader.stop();
      tun.onPackets(() => {});
      assert.throws(() => RingPump.tunReader({ tun }, ring, doorbell), /already read by its own onPackets reader/);
    } finally {
      tun.close();
    }
  });

  it('ends with EBADFD in stats().fatal when the interface is deleted under it', async () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 16, slotBytes: slotBytesFor(1420) });
    const reader = RingPump.tunReader({ tun }, ring, Doorbell.create());
    try {
      lab.ip('link', 'del', tun.name);
      await waitFor('the reader to end', () => (reader.running ? undefined : true));
      const { fatal } = reader.stats();
      assert.equal(fatal?.code, 'EBADFD');
      assert.equal(fatal?.syscall, 'read');
      assert.match(fatal.message, /RingPump tunReader stopped: read failed: EBADFD/);
    } finally {
      tun.close();
    }
  });
});
