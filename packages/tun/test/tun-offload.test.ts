import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { release } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { PacketRing, OFFLOAD_READ_BYTES, RingEmitter, SlotCursor, SlotCoalescer, slotBytesFor, Tun, UdpSocket } from '../src/index.js';
import { NetnsLab } from './lab.js';
import { echoReplyInPlace, parseIcmpEcho, parseIpv4, parseTcp, TCP_ACK, TCP_SYN, tcpSegment } from './packets.js';
import { consume, produce } from './ring-io.js';
import { openLabTun, PEER_ADDR, pingPeer, readWhenReadable, startEchoLoop, TUN_ADDR } from './tun-lab.js';

const MTU = 1420;
const OFFLOAD_SLOT = slotBytesFor(OFFLOAD_READ_BYTES);
const VNET_HDR = 10;
const NEEDS_CSUM = 1;
const GSO_TCPV4 = 1;
const GSO_UDP_L4 = 5;

interface Vnet {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** struct virtio_net_hdr, little-endian (legacy virtio on a little-endian host). */
function vnetHeader(b: Uint8Array): Vnet {
  const v = new DataView(b.buffer, b.byteOffset, VNET_HDR);
  return {
    flags: b[0]!,
    gsoType: b[1]!,
    hdrLen: v.getUint16(2, true),
    gsoSize: v.getUint16(4, true),
    csumStart: v.getUint16(6, true),
    csumOffset: v.getUint16(8, true),
  };
}

/** Kernel release as a comparable number, e.g. 6.18 -> 618. */
const kernel = ((): number => {
  const [major, minor] = release()
    .split('.')
    .map((x) => Number.parseInt(x, 10));
  return major! * 100 + minor!;
})();

describe('TUN offloads (IFF_VNET_HDR, TUNSETOFFLOAD)', () => {
  let lab: NetnsLab;
  const open = (offload: boolean, queues = 1): Tun => openLabTun(lab, { mtu: MTU, offload, queues });

  /**
   * The main thread as the egress ring's shard and consumer: every slot the
   * poller filled is shown to `inspect` (header + packet, a copy), then freed.
   */
  const drainInto = (ring: PacketRing, lane: SlotCursor, inspect: (slot: Buffer) => void): void => {
    lane.drain((seq) => {
      assert.equal(ring.segment(seq), 0, 'the TUN poller resets SEGMENT');
      inspect(Buffer.from(ring.packet(seq)));
      return false;
    });
    consume(ring, () => true);
  };
  /** A ring whose slots carry a stale SEGMENT, as reused slots of a UDP ring would. */
  const poisoned = (ring: PacketRing): PacketRing => {
    for (let seq = 0; seq < ring.capacity; seq++) ring.setSegment(seq, 777);
    return ring;
  };

  before(() => {
    lab = NetnsLab.create();
    lab.ip('link', 'set', 'lo', 'up');
  });
  after(() => lab?.destroy());

  it('opens with IFF_VNET_HDR and the offloads the kernel grants; without the option nothing changes', () => {
    const plain = open(false);
    const off = open(true, 2);
    try {
      assert.deepEqual(plain.offload, { vnetHdr: false, csum: false, tso: false, uso: false });
      assert.match(lab.ip('-d', 'link', 'show', plain.name), /vnet_hdr off/);
      assert.match(lab.ip('-d', 'link', 'show', off.name), /vnet_hdr on multi_queue numqueues 2/);
      // TSO since 2.6.x, USO since 6.2: this kernel must grant what it knows.
      assert.deepEqual(off.offload, { vnetHdr: true, csum: true, tso: true, uso: kernel >= 602 });
      assert.ok(Object.isFrozen(off.offload));
      assert.throws(() => Tun.open({ name: 'wctbad', netnsFd: lab.fd, offload: 'yes' as unknown as boolean }), TypeError);
    } finally {
      plain.close();
      off.close();
    }
  });

  it('carries a virtio_net_hdr on every read (zero for ping), and write() adds a zeroed one: ping answered, 0% loss', async () => {
    const tun = open(true);
    const ring = poisoned(PacketRing.create({ capacity: 64, slotBytes: OFFLOAD_SLOT }));
    const lane = new SlotCursor(ring);
    const reader = readWhenReadable('tun', tun.queueFd(0), ring);
    let requests = 0;
    try {
      const pinging = lab.exec('ping', '-c', '10', '-i', '0.02', '-W', '1', PEER_ADDR);
      let finished = false;
      void pinging.finally(() => (finished = true));
      while (!finished) {
        drainInto(ring, lane, (slot) => {
          assert.ok(slot.length > VNET_HDR);
          const packet = slot.subarray(VNET_HDR);
          const ip = parseIpv4(packet);
          const echo = ip && parseIcmpEcho(ip);
          if (!echo || ip.dst !== PEER_ADDR) return;
          requests++;
          assert.deepEqual([...slot.subarray(0, VNET_HDR)], Array(VNET_HDR).fill(0), 'no GSO, no partial checksum for ICMP');
          assert.equal(packet.length, packet.readUInt16BE(2), 'the packet follows the header whole');
          assert.ok(echoReplyInPlace(packet));
          assert.equal(tun.write(packet), true, JSON.stringify(tun.stats()));
        });
        await delay(2);
      }
      const ping = await pinging;
      assert.equal(ping.code, 0, ping.stdout);
      assert.match(ping.stdout, /10 packets transmitted, 10 received, 0% packet loss/);
      assert.equal(requests, 10);
      const s = tun.stats();
      assert.deepEqual([s.txPackets, s.txErrors, s.txDropped], [10, 0, 0]);
      assert.equal(reader.stats().truncated, 0);
    } finally {
      reader.stop();
      ring.close();
      tun.close();
    }
  });

  it('answers ping through a run-to-completion loop (poller -> echo in place -> emitter) with the header kept in OFFSET/LENGTH', async () => {
    const tun = open(true);
    const ring = PacketRing.create({ capacity: 64, slotBytes: OFFLOAD_SLOT });
    const echo = startEchoLoop(tun, ring);
    try {
      await pingPeer(lab, 20);
      const r = echo.reader.stats();
      assert.equal(r.dropsFull + r.truncated + r.errors, 0);
      const w = echo.emitter.stats();
      assert.ok(w.packets >= 20 && w.errors === 0, JSON.stringify(w));
      assert.ok(w.bytes >= 20 * (VNET_HDR + 84), 'each write carries the header and the packet');
    } finally {
      echo.stop();
      tun.close();
    }
  });

  it('hands over a UDP GSO send of a SEGMENT slot as one UDP_L4 super-packet (USO)', async () => {
    const tun = open(true);
    const ring = poisoned(PacketRing.create({ capacity: 16, slotBytes: OFFLOAD_SLOT }));
    const lane = new SlotCursor(ring);
    const reader = readWhenReadable('tun', tun.queueFd(0), ring);
    const socket = UdpSocket.open({ family: 4, netnsFd: lab.fd });
    const out = PacketRing.create({ capacity: 4, slotBytes: slotBytesFor(9000) });
    const emitter = RingEmitter.udp(socket.fd, out);
    const payload = Buffer.alloc(5300);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    try {
      assert.ok(produce(out, payload, 0, { family: 4, port: 9, addr: Uint8Array.of(198, 18, 0, 2) }));
      out.setSegment(0, 1000);
      new SlotCursor(out).drain(() => true);
      assert.equal(emitter.emit(), 1);
      let seen: Buffer | undefined;
      const deadline = Date.now() + 3000;
      while (!seen && Date.now() < deadline) {
        drainInto(ring, lane, (slot) => {
          const ip = parseIpv4(slot.subarray(VNET_HDR));
          if (ip?.protocol === 17 && ip.dst === PEER_ADDR) seen = slot;
        });
        await delay(2);
      }
      assert.ok(seen, `no UDP packet read from the TUN; reader ${JSON.stringify(reader.stats())}`);
      const h = vnetHeader(seen);
      assert.deepEqual([h.gsoType, h.gsoSize, h.flags & NEEDS_CSUM, h.csumStart, h.csumOffset], [GSO_UDP_L4, 1000, NEEDS_CSUM, 20, 6]);
      const packet = seen.subarray(VNET_HDR);
      assert.equal(packet.length, 20 + 8 + 5300, 'one read holds all six datagrams');
      assert.equal(packet.readUInt16BE(2), packet.length);
      assert.ok(packet.subarray(28).equals(payload));
      const w = emitter.stats();
      assert.deepEqual([w.packets, w.gsoSends, w.gsoSegments, w.errors], [6, 1, 6, 0]);
      assert.deepEqual([out.stats().emitted, out.stats().emitErrors], [1, 0]);
    } finally {
      reader.stop();
      out.close();
      ring.close();
      emitter.close();
      socket.close();
      tun.close();
    }
  });

  it('hands over TCP as TSO super-packets larger than the MTU (the test answers the handshake through write())', async () => {
    const tun = open(true);
    const ring = PacketRing.create({ capacity: 64, slotBytes: OFFLOAD_SLOT });
    const lane = new SlotCursor(ring);
    const reader = readWhenReadable('tun', tun.queueFd(0), ring);
    // A client in the lab namespace sends 200 kB to a peer that only this test plays.
    const script = `const s = require('net').connect(5000, '${PEER_ADDR}', () => s.write(Buffer.alloc(200000, 7)));
      s.on('error', () => {}); setTimeout(() => process.exit(0), 5000);`;
    const client = spawn('ip', ['netns', 'exec', lab.name, process.execPath, '-e', script], { stdio: 'ignore' });
    let synAcked = false;
    let tso: Buffer | undefined;
    try {
      const deadline = Date.now() + 5000;
      while (!tso && Date.now() < deadline) {
        drainInto(ring, lane, (slot) => {
          const ip = parseIpv4(slot.subarray(VNET_HDR));
          const tcp = ip && parseTcp(ip);
          if (!tcp || tcp.dstPort !== 5000) return;
          if (tcp.flags === TCP_SYN) {
            const synAck = tcpSegment(PEER_ADDR, TUN_ADDR, {
              srcPort: 5000,
              dstPort: tcp.srcPort,
              seq: 1000,
              ack: tcp.seq + 1,
              flags: TCP_SYN | TCP_ACK,
              window: 65535,
              mss: MTU - 40,
              windowShift: 7,
            });
            assert.equal(tun.write(synAck), true);
            synAcked = true;
          } else if (vnetHeader(slot).gsoType !== 0) {
            tso = slot;
          }
        });
        await delay(2);
      }
      assert.ok(synAcked, 'the client sent a SYN through the TUN');
      assert.ok(tso, `no TSO packet; reader ${JSON.stringify(reader.stats())}, tun ${JSON.stringify(tun.stats())}`);
      const h = vnetHeader(tso);
      const packet = tso.subarray(VNET_HDR);
      const tcp = parseTcp(parseIpv4(packet)!)!;
      assert.equal(h.gsoType, GSO_TCPV4);
      assert.ok(h.gsoSize > 0 && h.gsoSize <= MTU - 40, `gso_size ${h.gsoSize}`);
      assert.deepEqual([h.flags & NEEDS_CSUM, h.csumStart, h.csumOffset], [NEEDS_CSUM, 20, 16]);
      assert.ok(packet.length > MTU, `a ${packet.length}-byte read through a ${MTU}-byte MTU`);
      assert.ok(tcp.payload.length > h.gsoSize && tcp.payload.every((b) => b === 7));
      assert.equal(reader.stats().truncated, 0);
    } finally {
      reader.stop();
      client.kill();
      ring.close();
      tun.close();
    }
  });

  it('writes a coalesced run of TCP segments as one GSO packet (gathered slots, one writev): the kernel takes it whole', async () => {
    const tun = open(true);
    const fromKernel = PacketRing.create({ capacity: 64, slotBytes: OFFLOAD_SLOT });
    const toKernel = PacketRing.create({ capacity: 64, slotBytes: slotBytesFor(VNET_HDR + MTU) });
    const lane = new SlotCursor(fromKernel);
    const reader = readWhenReadable('tun', tun.queueFd(0), fromKernel);
    const emitter = RingEmitter.tun(tun.queueFd(0), toKernel);
    // A server in the lab namespace reports what it received; the test plays the client behind the TUN.
    const script = `const h = require('crypto').createHash('sha256'); let n = 0;
      require('net').createServer((s) => { s.on('data', (d) => { n += d.length; h.update(d); }); s.on('end', () => { console.log(n, h.digest('hex')); process.exit(0); }); })
        .listen(5001, '${TUN_ADDR}'); setTimeout(() => process.exit(3), 8000);`;
    const server = lab.exec(process.execPath, '-e', script);
    const seg = (t: { seq: number; ack: number; flags: number; payload?: Buffer; mss?: number }): Buffer =>
      tcpSegment(PEER_ADDR, TUN_ADDR, { srcPort: 40000, dstPort: 5001, window: 65535, ...t });
    const rxPackets = (): number =>
      (JSON.parse(lab.ip('-s', '-j', 'link', 'show', tun.name)) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;
    try {
      let synAck: { seq: number } | undefined;
      for (const end = Date.now() + 5000; !synAck && Date.now() < end;) {
        assert.equal(tun.write(seg({ seq: 99, ack: 0, flags: TCP_SYN, mss: MTU - 40 })), true);
        await delay(50);
        drainInto(fromKernel, lane, (slot) => {
          const ip = parseIpv4(slot.subarray(VNET_HDR));
          const tcp = ip && parseTcp(ip);
          if (tcp?.dstPort === 40000 && tcp.flags === (TCP_SYN | TCP_ACK)) synAck = tcp;
        });
      }
      assert.ok(synAck, 'the server answered the SYN');
      const ack = (synAck.seq + 1) >>> 0;
      assert.equal(tun.write(seg({ seq: 100, ack, flags: TCP_ACK })), true);
      // 20 segments of 1000 bytes, as decrypted slots hold them: a virtio_net_hdr, then the packet.
      const data = Buffer.alloc(20_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
      for (let i = 0; i < 20; i++) {
        const flags = i === 19 ? TCP_ACK | 0x08 : TCP_ACK;
        const packet = seg({ seq: 100 + i * 1000, ack, flags, payload: data.subarray(i * 1000, (i + 1) * 1000) });
        assert.ok(produce(toKernel, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]), packet])));
      }
      const before = rxPackets();
      const coalescer = new SlotCoalescer(64);
      let joined = 0;
      const shard = new SlotCursor(toKernel);
      assert.equal(
        shard.drainRuns(
          () => true,
          (seqs, emit, n) => (joined += coalescer.settle(toKernel, seqs, emit, n)),
          64,
        ),
        20,
      );
      assert.equal(joined, 19);
      assert.equal(emitter.emit(), 20);
      assert.deepEqual([toKernel.stats().emitted, toKernel.stats().emitErrors, toKernel.stats().dropped], [20, 0, 0]);
      assert.equal(rxPackets() - before, 1, 'the interface received one packet for the 20 segments');
      assert.equal(tun.write(seg({ seq: 100 + 20_000, ack, flags: TCP_ACK | 0x01 })), true);
      const result = await server;
      assert.equal(result.code, 0, result.stdout);
      assert.equal(result.stdout.trim(), `20000 ${createHash('sha256').update(data).digest('hex')}`);
      assert.equal(reader.stats().truncated, 0);
    } finally {
      reader.stop();
      emitter.close();
      fromKernel.close();
      toKernel.close();
      tun.close();
      await server.catch(() => undefined);
    }
  });

  it('refuses onPackets on an offloading Tun: its reads are for a poller and a shard that segments them', () => {
    const tun = open(true);
    try {
      assert.throws(() => tun.onPackets(() => {}), /opened with offload: .* open it without offload to use onPackets/);
    } finally {
      tun.close();
    }
  });
});
