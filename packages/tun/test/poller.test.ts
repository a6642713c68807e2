// Run-to-completion building blocks: RingPoller (a reader's step on the
// caller's thread), pollIn (the caller's only wait) and SO_REUSEPORT groups
// (the kernel keeps each sender on one socket of the group).
import assert from 'node:assert/strict';
import { PacketRing, pollIn, RingPoller, SlotCursor, slotBytesFor, SlotState, UdpSocket } from '../src/index.js';
import { consume } from './ring-io.js';
import { NetnsLab } from './lab.js';
import { openLabTun, PEER_ADDR, TUN_ADDR } from './tun-lab.js';

const LOCALHOST = new Uint8Array([127, 0, 0, 1]);
// Headroom the ring's creator asks for: the pollers store each packet after it (any number works; these are not 0 to tell).
const UDP_HEADROOM = 40;
const TUN_HEADROOM = 24;

/** Everything the poller published, handed to `seen` and freed (a shard that emits nothing). */
function drainAll(ring: PacketRing, lane: SlotCursor, seen: (packet: Uint8Array, seq: number) => void): number {
  lane.drain(() => true);
  return consume(ring, (p, seq) => (seen(p, seq), true));
}

describe('run-to-completion polling (RingPoller, pollIn, SO_REUSEPORT)', function () {
  this.timeout(30_000);
  let lab: NetnsLab;
  before(() => {
    lab = NetnsLab.create();
    lab.ip('link', 'set', 'lo', 'up');
  });
  after(() => lab?.destroy());

  it('spreads 16 senders over a reuseport group, each sender on one socket, in order; pollIn tells which socket is ready', () => {
    const a = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd, reusePort: true });
    const b = UdpSocket.open({ family: 4, address: '127.0.0.1', port: a.port, netnsFd: lab.fd, reusePort: true });
    const senders = Array.from({ length: 16 }, () => UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd }));
    const rings = [a, b].map(() =>
      PacketRing.create({ capacity: 256, slotBytes: slotBytesFor(1420, { headroom: UDP_HEADROOM }), headroom: UDP_HEADROOM }),
    );
    const cursors = rings.map((r) => new SlotCursor(r));
    const pollers = [RingPoller.udp(a.fd, rings[0]!, { batch: 64 }), RingPoller.udp(b.fd, rings[1]!, { batch: 64 })];
    const PER_SENDER = 50;
    // sender port -> socket index, and the numbers seen from it in arrival order
    const home = new Map<number, number>();
    const got = new Map<number, number[]>();
    try {
      for (let n = 0; n < PER_SENDER; n++) {
        for (const s of senders) {
          const d = new Uint8Array(200);
          new DataView(d.buffer).setUint32(0, n, true);
          assert.ok(s.sendTo(d, 4, LOCALHOST, a.port));
        }
      }
      const total = PER_SENDER * senders.length;
      let received = 0;
      const deadline = Date.now() + 10_000;
      while (received < total) {
        assert.ok(Date.now() < deadline, `received ${received} of ${total}`);
        const mask = pollIn(a.fd, b.fd, 200);
        for (const k of [0, 1]) {
          if ((mask & (1 << k)) === 0) continue;
          assert.ok(pollers[k]!.read() > 0, `pollIn said socket ${k} was readable, read() found nothing`);
          received += drainAll(rings[k]!, cursors[k]!, (p, seq) => {
            const from = rings[k]!.peer(seq);
            assert.equal(from.family, 4);
            assert.equal(rings[k]!.offset(seq), UDP_HEADROOM);
            assert.equal(p.length, 200);
            const was = home.get(from.port);
            assert.ok(was === undefined || was === k, `sender ${from.port} reached socket ${was} and then socket ${k}`);
            home.set(from.port, k);
            const list = got.get(from.port) ?? [];
            list.push(new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true));
            got.set(from.port, list);
          });
        }
      }
      for (const s of senders)
        assert.deepEqual(
          got.get(s.port),
          Array.from({ length: PER_SENDER }, (_, i) => i),
          `sender ${s.port}`,
        );
      // 16 senders hashed over 2 sockets all landing on one: 1 in 32,768.
      assert.deepEqual(new Set(home.values()), new Set([0, 1]), 'the kernel kept every sender on one socket');
      assert.equal(pollIn(a.fd, b.fd, 0), 0, 'nothing left to read');
      for (const r of rings) assert.equal(r.state(r.head), SlotState.FREE);
    } finally {
      for (const p of pollers) p.close();
      for (const s of [a, b, ...senders]) s.close();
    }
  });

  it('pollIn sleeps for its timeout when nothing comes, and a poller read of an empty socket publishes nothing', () => {
    const a = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const b = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 16, slotBytes: slotBytesFor(1420) });
    const poller = RingPoller.udp(a.fd, ring);
    try {
      const t0 = performance.now();
      assert.equal(pollIn(a.fd, b.fd, 50), 0);
      const waited = performance.now() - t0;
      assert.ok(waited >= 45, `returned after ${waited.toFixed(1)} ms`);
      assert.equal(poller.read(), 0);
      assert.equal(ring.head, 0);
      assert.throws(() => pollIn(a.fd, b.fd, -1), /timeoutMs/);
    } finally {
      poller.close();
      a.close();
      b.close();
    }
  });

  it("reads what the kernel routes into a TUN queue into slots after the ring's headroom, on the calling thread", async () => {
    const tun = openLabTun(lab);
    const ring = PacketRing.create({ capacity: 64, slotBytes: slotBytesFor(1500, { headroom: TUN_HEADROOM }), headroom: TUN_HEADROOM });
    const lane = new SlotCursor(ring);
    const never = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const poller = RingPoller.tun(tun.queueFd(0), ring);
    // Nobody answers these echo requests: the test only looks at what reaches the TUN.
    const ping = lab.exec('ping', '-c', '3', '-i', '0.05', '-W', '1', PEER_ADDR);
    try {
      let echoes = 0;
      const deadline = Date.now() + 10_000;
      while (echoes < 3) {
        assert.ok(Date.now() < deadline, `${echoes} of 3 echo requests read`);
        const mask = pollIn(tun.queueFd(0), never.fd, 100);
        assert.equal(mask & 2, 0);
        if (mask & 1) poller.read();
        drainAll(ring, lane, (p, seq) => {
          assert.equal(ring.offset(seq), TUN_HEADROOM);
          // IPv4 ICMP echo request from the TUN's address to the peer (the kernel may send other things too).
          if (
            p[0] === 0x45 &&
            p[9] === 1 &&
            p[20] === 8 &&
            p.subarray(12, 16).join('.') === TUN_ADDR &&
            p.subarray(16, 20).join('.') === PEER_ADDR
          )
            echoes++;
        });
        // Let the ping child's exit be noticed between polls.
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(poller.stats().packets >= 3, true);
    } finally {
      poller.close();
      never.close();
      tun.close();
      await ping;
    }
  });
});
