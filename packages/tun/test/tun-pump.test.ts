import assert from 'node:assert/strict';
import { Doorbell, PacketRing, RingPump, slotBytesForMtu } from '../src/index.js';
import { NetnsLab, waitFor } from './lab.js';
import { openLabTun, pingPeer, startEchoPipeline } from './tun-lab.js';

describe('TUN pumps', () => {
  let lab: NetnsLab;
  const open = () => openLabTun(lab, { mtu: 1420 });

  before(() => {
    lab = NetnsLab.create();
  });
  after(() => lab?.destroy());

  it('answers ping through tunReader -> worker shard (echo request to reply) -> tunWriter with 0% loss', async () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 256, slotBytes: slotBytesForMtu(tun.mtu) });
    const { doorbell, reader, writer, shard } = startEchoPipeline({ tun, queue: 0 }, ring);
    try {
      await shard.ready;
      await pingPeer(lab, 20);
      const [r, w] = [reader.stats(), writer.stats()];
      assert.ok(r.packets >= 20, JSON.stringify(r));
      assert.ok(w.packets >= 20, JSON.stringify(w));
      assert.equal(r.dropsFull + r.truncated + r.errors + w.errors, 0);
      assert.equal(ring.stats().emitted, w.packets);
    } finally {
      ring.close(doorbell);
      tun.close();
    }
    assert.equal(reader.running, false, 'Tun.close() stops its pumps');
    assert.equal(writer.running, false);
    assert.ok(!lab.linkNames().includes(tun.name), 'the interface is gone once the Tun and its pumps are closed');
    assert.equal(await shard.exited, 0);
  });

  it('keeps one reader per queue: onPackets and a tunReader exclude each other', () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 16, slotBytes: slotBytesForMtu(1420) });
    const doorbell = Doorbell.create();
    try {
      const reader = RingPump.tunReader({ tun }, ring, doorbell);
      assert.throws(() => tun.onPackets(() => {}), /has a RingPump reading its queues/);
      assert.throws(() => RingPump.tunReader({ tun }, ring, doorbell), /already has a tunReader pump/);
      assert.throws(() => RingPump.tunReader({ tun, queue: 1 }, ring, doorbell), RangeError);
      reader.stop();
      tun.onPackets(() => {});
      assert.throws(() => RingPump.tunReader({ tun }, ring, doorbell), /already read by its own onPackets reader/);
      RingPump.tunWriter({ tun }, ring).stop();
    } finally {
      tun.close();
    }
  });

  it('ends with EBADFD in stats().fatal when the interface is deleted under it', async () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 16, slotBytes: slotBytesForMtu(1420) });
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
