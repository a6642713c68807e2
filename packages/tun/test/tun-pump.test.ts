import assert from 'node:assert/strict';
import { Doorbell, PacketRing, RingPump, slotBytesForMtu, Tun } from '../src/index.js';
import type { ShardWorkerData } from './fixtures/shard-worker.js';
import { NetnsLab, waitFor } from './lab.js';
import { startWorker } from './workers.js';

const TUN_ADDR = '198.18.0.1';
const PEER_ADDR = '198.18.0.2';

describe('TUN pumps', () => {
  let lab: NetnsLab;
  let names = 0;
  const open = (): Tun => {
    const tun = Tun.open({ name: `wct${process.pid % 100000}p${names++}`, netnsFd: lab.fd, mtu: 1420 });
    lab.ip('link', 'set', tun.name, 'up');
    lab.ip('addr', 'add', `${TUN_ADDR}/24`, 'dev', tun.name);
    return tun;
  };

  before(() => {
    lab = NetnsLab.create();
  });
  after(() => lab?.destroy());

  it('answers ping through tunReader -> worker shard (echo request to reply) -> tunWriter with 0% loss', async () => {
    const tun = open();
    const ring = PacketRing.create({ capacity: 256, slotBytes: slotBytesForMtu(tun.mtu) });
    const doorbell = Doorbell.create();
    const reader = RingPump.tunReader({ tun, queue: 0 }, ring, doorbell);
    const writer = RingPump.tunWriter({ tun, queue: 0 }, ring);
    const data: ShardWorkerData = { ring: ring.sab, doorbell: doorbell.sab, lane: 0, mode: 'icmp-echo' };
    const shard = startWorker<{ processed: number }>('shard-worker.ts', data);
    try {
      await shard.ready;
      const ping = await lab.exec('ping', '-c', '20', '-i', '0.01', '-W', '1', PEER_ADDR);
      assert.equal(ping.code, 0, ping.stdout);
      assert.match(ping.stdout, /20 packets transmitted, 20 received, 0% packet loss/);
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
      assert.match(fatal!.message, /RingPump tunReader stopped: read failed: EBADFD/);
    } finally {
      tun.close();
    }
  });
});
