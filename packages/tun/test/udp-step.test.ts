import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';
import { PacketRing, OFFLOAD_READ_BYTES, RingEmitter, RingPoller, SlotCursor, slotBytesFor, TunError, UdpSocket } from '../src/index.js';
import { NetnsLab, waitFor } from './lab.js';
import { consume, produce } from './ring-io.js';
import { readWhenReadable, type LabReader } from './tun-lab.js';

const LOCALHOST = new Uint8Array([127, 0, 0, 1]);
const SIZE = 1000;
const SLOT_BYTES = slotBytesFor(1500);

const datagram = (n: number): Uint8Array => {
  const b = new Uint8Array(SIZE).fill(n & 0xff);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const numberOf = (p: Uint8Array): number => new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);

/**
 * A peer driven from the main thread: it sends through its own UDP emitter
 * (so it can use GSO) and receives through its own UDP poller (so it can
 * take GRO), acting as producer, shard and consumer of its two rings.
 */
class Peer {
  readonly socket: UdpSocket;
  readonly out = PacketRing.create({ capacity: 1024, slotBytes: SLOT_BYTES });
  readonly in = PacketRing.create({ capacity: 1024, slotBytes: SLOT_BYTES });
  readonly emitter: RingEmitter;
  readonly reader: LabReader;
  readonly #outLane = new SlotCursor(this.out);
  readonly #inLane = new SlotCursor(this.in);

  constructor(netnsFd: number, options: { gso: boolean; gro: boolean }) {
    this.socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd });
    this.emitter = RingEmitter.udp(this.socket.fd, this.out, { gso: options.gso });
    this.reader = readWhenReadable('udp', this.socket.fd, this.in, { gro: options.gro });
  }

  send(packets: Uint8Array[], port: number): void {
    for (const p of packets) assert.ok(produce(this.out, p, 0, { family: 4, port, addr: LOCALHOST }));
    this.#outLane.drain(() => true);
    this.emitter.emit();
  }

  receive(into: number[]): number {
    this.#inLane.drain(() => true);
    return consume(this.in, (p) => (into.push(numberOf(p)), true));
  }

  close(): void {
    this.reader.stop();
    this.emitter.close();
    this.socket.close();
  }
}

/**
 * Sends datagrams 0..total-1 from peer to port, at most 256 in flight (64 at a
 * time, so no ring or socket buffer overflows), and fails unless each comes
 * back, in order, within 15 s.
 */
async function echoInOrder(peer: Peer, port: number, total: number, describe: () => string): Promise<void> {
  const got: number[] = [];
  let sent = 0;
  const deadline = Date.now() + 15_000;
  while (got.length < total) {
    assert.ok(Date.now() < deadline, `received ${got.length} of ${total}; ${describe()}`);
    if (sent < total && sent - got.length <= 192) {
      const n = Math.min(64, total - sent);
      peer.send(
        Array.from({ length: n }, (_, i) => datagram(sent + i)),
        port,
      );
      sent += n;
    }
    if (peer.receive(got) === 0) await tick();
  }
  for (let i = 0; i < total; i++) if (got[i] !== i) assert.fail(`datagram ${i} came back as ${got[i]}`);
}

describe('UDP pollers and emitters', () => {
  let lab: NetnsLab;
  before(() => {
    lab = NetnsLab.create();
    lab.ip('link', 'set', 'lo', 'up');
  });
  after(() => lab?.destroy());

  for (const offload of [true, false]) {
    it(`echoes 10,000 numbered datagrams back in order, read, turned and sent on one thread (GSO/GRO ${offload ? 'on' : 'off'})`, async () => {
      const socket = UdpSocket.open({ family: 'dual', netnsFd: lab.fd });
      const ring = PacketRing.create({ capacity: 1024, slotBytes: SLOT_BYTES });
      const cursor = new SlotCursor(ring);
      const emitter = RingEmitter.udp(socket.fd, ring, { gso: offload });
      // The identity shard: every slot goes back to where it came from.
      const reader = readWhenReadable('udp', socket.fd, ring, { gro: offload }, () => {
        cursor.drain(() => true);
        emitter.emit();
      });
      const peer = new Peer(lab.fd, { gso: offload, gro: offload });
      const total = 10_000;
      try {
        await echoInOrder(peer, socket.port, total, () => `echo ${JSON.stringify(reader.stats())}`);
        const [r, pw, pr, w] = [reader.stats(), peer.emitter.stats(), peer.reader.stats(), emitter.stats()];
        assert.equal(r.packets, total);
        assert.equal(ring.stats().emitted, total);
        assert.deepEqual([w.packets, w.errors], [total, 0]);
        assert.equal(r.dropsFull + r.truncated + r.errors + pw.errors + pr.dropsFull, 0);
        assert.ok(r.batches < total, 'the poller reads batches, not a datagram at a time');
        if (offload) {
          assert.ok(pw.gsoSends > 0, `GSO used by the peer: ${pw.gsoSends}`);
          assert.ok(r.groReceives > 0 && pr.groReceives > 0, `GRO used: echo ${r.groReceives}, peer ${pr.groReceives}`);
          assert.equal(r.groActive, true);
          assert.ok(w.gsoSends > 0 && w.gsoActive, `GSO used by the echo: ${JSON.stringify(w)}`);
        } else {
          assert.deepEqual([pw.gsoSends, r.groReceives, pr.groReceives], [0, 0, 0]);
          assert.equal(r.groActive, false);
          assert.deepEqual([w.gsoSends, w.gsoActive], [0, false]);
        }
      } finally {
        reader.stop();
        emitter.close();
        peer.close();
        socket.close();
      }
    });
  }

  it('sends what a crashed shard left behind once its successor recovers it, with no more traffic needed', async () => {
    const socket = UdpSocket.open({ family: 'dual', netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 64, slotBytes: SLOT_BYTES });
    const poller = RingPoller.udp(socket.fd, ring);
    const emitter = RingEmitter.udp(socket.fd, ring);
    const peer = new Peer(lab.fd, { gso: false, gro: false });
    try {
      peer.send(
        Array.from({ length: 8 }, (_, i) => datagram(i)),
        socket.port,
      );
      await waitFor('8 datagrams read', () => (poller.read() >= 0 && ring.head === 8 ? true : undefined));
      // The first shard echoes 0-3, then dies holding 4-7 BUSY: it claimed them and never published.
      const dying = new SlotCursor(ring);
      dying.drain(() => true, 4);
      emitter.emit();
      for (let i = 0; i < 4; i++) assert.notEqual(dying.claim(), -1);
      const got: number[] = [];
      await waitFor('the first 4 back', () => (peer.receive(got) >= 0 && got.length >= 4 ? true : undefined));
      assert.deepEqual(got, [0, 1, 2, 3]);
      assert.equal(ring.stats().tail, 4, "the ring waits at the dead shard's slots");
      // Its successor starts where the last publish left the cursor, turns them into DROP, and that
      // counts as finishing: its emitter frees them at once.
      const successor = new SlotCursor(ring);
      assert.equal(
        successor.drain(() => true),
        4,
      );
      assert.equal(successor.recovered, 4);
      emitter.emit();
      assert.deepEqual([ring.stats().tail, ring.stats().dropped, ring.stats().emitted], [8, 4, 4]);
      peer.send(
        Array.from({ length: 8 }, (_, i) => datagram(8 + i)),
        socket.port,
      );
      await waitFor('8 more read', () => (poller.read() >= 0 && ring.head === 16 ? true : undefined));
      successor.drain(() => true);
      emitter.emit();
      await waitFor('12 back', () => (peer.receive(got) >= 0 && got.length >= 12 ? true : undefined));
      assert.deepEqual(got, [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]);
    } finally {
      poller.close();
      emitter.close();
      peer.close();
      socket.close();
    }
  });

  /**
   * Sends `slots` (each: the sizes of the datagrams it holds back to back,
   * numbered in order across slots) through a UDP emitter, and receives them one
   * datagram per slot (no GRO) at a peer socket. Returns the emitter's stats and
   * what arrived as [number, size].
   */
  async function sendSegmented(
    slots: number[][],
    gso: boolean,
  ): Promise<{ w: ReturnType<RingEmitter['stats']>; got: [number, number][]; out: PacketRing }> {
    const sender = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const receiver = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    // Up to 72,000 bytes in one slot: more than one GSO send may carry.
    const out = PacketRing.create({ capacity: 8, slotBytes: slotBytesFor(OFFLOAD_READ_BYTES, { tailroom: 8 * 1024 }) });
    const inbound = PacketRing.create({ capacity: 256, slotBytes: 2048 });
    // Stale SEGMENT values, as reused slots hold them: every producer must reset the field.
    for (const ring of [out, inbound]) for (let seq = 0; seq < ring.capacity; seq++) ring.setSegment(seq, 777);
    const emitter = RingEmitter.udp(sender.fd, out, { gso });
    const reader = readWhenReadable('udp', receiver.fd, inbound, { gro: false });
    const got: [number, number][] = [];
    let n = 0;
    try {
      for (const sizes of slots) {
        const bytes = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
        let at = 0;
        for (const size of sizes) {
          new DataView(bytes.buffer).setUint32(at, n++, true);
          at += size;
        }
        const seq = out.head;
        assert.ok(produce(out, bytes, 0, { family: 4, port: receiver.port, addr: LOCALHOST }));
        assert.equal(out.segment(seq), 0, 'produce() resets SEGMENT');
        if (sizes.length > 1) out.setSegment(seq, sizes[0]!);
      }
      new SlotCursor(out).drain(() => true);
      assert.equal(emitter.emit(), slots.length);
      const lane = new SlotCursor(inbound);
      await waitFor(`${n} datagrams`, () => {
        lane.drain((seq) => {
          assert.equal(inbound.segment(seq), 0, 'the UDP poller resets SEGMENT');
          return true;
        });
        consume(inbound, (p) => (got.push([numberOf(p), p.length]), true));
        return got.length >= n ? true : undefined;
      });
      return { w: emitter.stats(), got, out };
    } finally {
      emitter.close();
      reader.stop();
      sender.close();
      receiver.close();
    }
  }

  for (const gso of [true, false]) {
    it(`sends a SEGMENT slot (5 x 1000 + 300 bytes) as its 6 datagrams in order, between plain slots (GSO ${gso ? 'on' : 'off'})`, async () => {
      const { w, got, out } = await sendSegmented([[1000], [1000, 1000, 1000, 1000, 1000, 300], [1000]], gso);
      assert.deepEqual(got, [
        [0, 1000],
        [1, 1000],
        [2, 1000],
        [3, 1000],
        [4, 1000],
        [5, 1000],
        [6, 300],
        [7, 1000],
      ]);
      assert.deepEqual([w.packets, w.errors, w.bytes], [8, 0, 7300]);
      assert.deepEqual([out.stats().emitted, out.stats().emitErrors], [3, 0], 'the ring counts slots');
      // With GSO, the plain slot before joins the run (same peer and size); the 300-byte datagram ends it.
      assert.deepEqual([w.gsoSends, w.gsoSegments, w.gsoActive], gso ? [1, 7, true] : [0, 0, false]);
    });
  }

  it('splits a SEGMENT slot of 60 x 1200 bytes (72,000) into GSO sends of at most 65,507 bytes', async () => {
    const { w, got } = await sendSegmented([Array<number>(60).fill(1200)], true);
    assert.deepEqual(
      got,
      Array.from({ length: 60 }, (_, i) => [i, 1200]),
    );
    // 54 x 1200 = 64,800 fits one send, 55 would not.
    assert.deepEqual([w.packets, w.errors, w.gsoSends, w.gsoSegments, w.gsoRefused], [60, 0, 2, 60, 0]);
  });

  it('refuses a slot whose SEGMENT makes no sense, and sends the next ones', () => {
    const sender = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const out = PacketRing.create({ capacity: 4, slotBytes: slotBytesFor(OFFLOAD_READ_BYTES) });
    const emitter = RingEmitter.udp(sender.fd, out);
    try {
      const to = { family: 4 as const, port: 9, addr: LOCALHOST };
      produce(out, new Uint8Array(100), 0, to);
      out.setSegment(0, -5);
      produce(out, new Uint8Array(5000), 0, to);
      out.setSegment(1, 2); // 2,500 datagrams: more than a slot may be cut into
      produce(out, new Uint8Array(100), 0, to);
      new SlotCursor(out).drain(() => true);
      assert.equal(emitter.emit(), 3);
      assert.deepEqual([out.stats().emitted, out.stats().emitErrors], [1, 2]);
      assert.equal(emitter.stats().packets, 1);
    } finally {
      emitter.close();
      sender.close();
    }
  });

  it('resends a run the kernel refuses as GSO one datagram each, and sends them all', () => {
    // Segments larger than the route's MTU make a UDP_SEGMENT send fail
    // (EMSGSIZE on this kernel); plain sends of the same datagrams are fragmented and succeed.
    lab.ip('link', 'add', 'wctv0', 'mtu', '1280', 'type', 'veth', 'peer', 'name', 'wctv1');
    lab.ip('link', 'set', 'wctv0', 'up');
    lab.ip('link', 'set', 'wctv1', 'up');
    lab.ip('addr', 'add', '10.99.0.1/24', 'dev', 'wctv0');
    const socket = UdpSocket.open({ family: 4, netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 64, slotBytes: SLOT_BYTES });
    const emitter = RingEmitter.udp(socket.fd, ring);
    const lane = new SlotCursor(ring);
    try {
      for (let i = 0; i < 8; i++) produce(ring, new Uint8Array(1400).fill(i), 0, { family: 4, port: 9, addr: Uint8Array.of(10, 99, 0, 2) });
      lane.drain(() => true);
      assert.equal(emitter.emit(), 8);
      const stats = emitter.stats();
      assert.equal(ring.stats().emitted, 8, JSON.stringify({ ring: ring.stats(), stats }));
      assert.equal(stats.errors, 0);
      assert.equal(stats.gsoSends, 0);
      assert.equal(stats.gsoRefused, 1);
      assert.ok(stats.lastError === 'EMSGSIZE' || stats.lastError === 'EINVAL', stats.lastError);
      assert.equal(stats.packets, 8);
    } finally {
      emitter.close();
      socket.close();
      lab.ip('link', 'del', 'wctv0');
    }
  });

  it('drops and counts a datagram larger than a slot, and keeps receiving (with and without GRO)', async () => {
    for (const gro of [false, true]) {
      const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
      const sender = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
      const ring = PacketRing.create({ capacity: 16, slotBytes: 256 });
      const reader = readWhenReadable('udp', socket.fd, ring, { gro });
      try {
        assert.equal(sender.sendTo(new Uint8Array(100).fill(1), 4, LOCALHOST, socket.port), true);
        assert.equal(sender.sendTo(new Uint8Array(3000).fill(2), 4, LOCALHOST, socket.port), true);
        assert.equal(sender.sendTo(new Uint8Array(192).fill(3), 4, LOCALHOST, socket.port), true);
        await waitFor('two datagrams in the ring', () => (ring.head === 2 ? true : undefined));
        assert.deepEqual([ring.length(0), ring.packet(0)[0], ring.length(1), ring.packet(1)[0]], [100, 1, 192, 3]);
        const from = ring.peer(1);
        assert.deepEqual([from.family, from.port, [...from.addr.subarray(0, 4)]], [4, sender.port, [127, 0, 0, 1]]);
        await waitFor('the truncation count', () => (reader.stats().truncated === 1 ? true : undefined));
      } finally {
        reader.stop();
        socket.close();
        sender.close();
      }
    }
  });

  it('shows IPv4 peers of a dual-stack socket as family 4 and IPv6 peers as family 6', async () => {
    const socket = UdpSocket.open({ family: 'dual', netnsFd: lab.fd });
    const v4 = UdpSocket.open({ family: 4, netnsFd: lab.fd });
    const v6 = UdpSocket.open({ family: 6, address: '::1', netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 16, slotBytes: 256 });
    const reader = readWhenReadable('udp', socket.fd, ring);
    const loop6 = new Uint8Array(16);
    loop6[15] = 1;
    try {
      assert.equal(socket.family, 6);
      v4.sendTo(Uint8Array.of(4), 4, LOCALHOST, socket.port);
      await waitFor('the IPv4 datagram', () => (ring.head === 1 ? true : undefined));
      v6.sendTo(Uint8Array.of(6), 6, loop6, socket.port);
      await waitFor('the IPv6 datagram', () => (ring.head === 2 ? true : undefined));
      const a = ring.peer(0);
      const b = ring.peer(1);
      assert.deepEqual([a.family, a.port, [...a.addr]], [4, v4.port, [127, 0, 0, 1, ...Array<number>(12).fill(0)]]);
      assert.deepEqual([b.family, b.port, [...b.addr]], [6, v6.port, [...loop6]]);
      // And a dual-stack socket sends to a family-4 address (v4-mapped natively).
      assert.equal(socket.sendTo(Uint8Array.of(9), 4, LOCALHOST, v4.port), true);
      assert.throws(
        () => v4.sendTo(Uint8Array.of(1), 6, loop6, 9),
        (e: unknown) => e instanceof TunError && e.code === 'EAFNOSUPPORT',
      );
    } finally {
      reader.stop();
      for (const s of [socket, v4, v6]) s.close();
    }
  });

  it('adopts an inherited bound socket with fromFd, and refuses fds that are not UDP sockets', async () => {
    const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const receiver = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 16, slotBytes: 256 });
    const reader = readWhenReadable('udp', receiver.fd, ring);
    try {
      const script = `
        import { UdpSocket } from './src/index.ts';
        const s = UdpSocket.fromFd(3);
        s.sendTo(Uint8Array.of(7), 4, Uint8Array.of(127, 0, 0, 1), ${receiver.port});
        console.log(s.port);`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: new URL('..', import.meta.url).pathname,
        stdio: ['ignore', 'pipe', 'inherit', socket.fd],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 0);
      assert.equal(Number(out.trim()), socket.port);
      await waitFor('the datagram from the adopted socket', () => (ring.head === 1 ? true : undefined));
      assert.equal(ring.peer(0).port, socket.port);
    } finally {
      reader.stop();
      socket.close();
      receiver.close();
    }
    const file = openSync('/dev/null', 'r');
    try {
      assert.throws(
        () => UdpSocket.fromFd(file),
        (e: unknown) => e instanceof TunError && e.code === 'ENOTSOCK',
      );
    } finally {
      closeSync(file);
    }
    assert.throws(
      () => UdpSocket.fromFd(999_999),
      (e: unknown) => e instanceof TunError && e.code === 'EBADF',
    );
  });

  it('reads and sends nothing once the ring is closed', () => {
    const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 16, slotBytes: 256 });
    const poller = RingPoller.udp(socket.fd, ring);
    const emitter = RingEmitter.udp(socket.fd, ring);
    try {
      assert.ok(socket.sendTo(new Uint8Array(10), 4, LOCALHOST, socket.port));
      ring.close();
      assert.equal(poller.read(), 0);
      assert.equal(ring.head, 0);
      assert.equal(emitter.emit(), 0);
    } finally {
      poller.close();
      emitter.close();
      socket.close();
    }
  });
});
