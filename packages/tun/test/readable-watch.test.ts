// watchReadable: readiness on the main loop (libuv poll, level-triggered),
// for the inline shard of workers 0, which reads its fds itself. Counted in
// event-loop turns (setImmediate runs once per turn, after the poll phase), so
// "no callback" and "a callback every turn" need no clock.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setImmediate as tick } from 'node:timers/promises';
import { PacketRing, RingPoller, SlotCursor, slotBytesFor, TunError, UdpSocket, watchReadable, type ReadableWatch } from '../src/index.js';
import { consume } from './ring-io.js';
import { NetnsLab, waitFor } from './lab.js';
import { openLabTun, PEER_ADDR } from './tun-lab.js';

const LOCALHOST = Uint8Array.of(127, 0, 0, 1);

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

/** A watch that counts its callbacks (and fails the test on an error). */
function counted(fd: number, onCall: (w: ReadableWatch) => void = () => {}): { watch: ReadableWatch; calls: () => number } {
  let calls = 0;
  const watch: ReadableWatch = watchReadable(fd, (err) => {
    assert.equal(err, null);
    calls++;
    onCall(watch);
  });
  return { watch, calls: () => calls };
}

/** Reads everything queued on a UDP socket (a RingPoller step) and returns the datagrams. */
function drainUdp(fd: number): Uint8Array[] {
  const ring = PacketRing.create({ capacity: 64, slotBytes: slotBytesFor(1500) });
  const lane = new SlotCursor(ring);
  const poller = RingPoller.udp(fd, ring);
  const out: Uint8Array[] = [];
  try {
    while (poller.read() > 0) {
      lane.drain(() => true);
      consume(ring, (p) => (out.push(Uint8Array.from(p)), true));
    }
  } finally {
    poller.close();
  }
  return out;
}

describe('watchReadable (readiness on the event loop)', function () {
  this.timeout(30_000);
  let lab: NetnsLab;
  let rx: UdpSocket;
  let tx: UdpSocket;
  const open = () => UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
  const send = (port: number, n = 1) => {
    for (let i = 0; i < n; i++) assert.ok(tx.sendTo(Uint8Array.of(i & 0xff), 4, LOCALHOST, port));
  };

  before(() => {
    lab = NetnsLab.create();
    lab.ip('link', 'set', 'lo', 'up');
  });
  after(() => lab?.destroy());
  beforeEach(() => {
    rx = open();
    tx = open();
  });
  afterEach(() => {
    rx.close();
    tx.close();
  });

  it('stays quiet on a quiet fd, calls back on every turn while a datagram waits, and stops once it is read', async () => {
    const { watch, calls } = counted(rx.fd);
    try {
      await turns(5);
      assert.equal(calls(), 0, 'called back with nothing to read');
      send(rx.port);
      await waitFor('the first callback', () => (calls() > 0 ? true : undefined));
      const first = calls();
      await turns(5);
      assert.ok(calls() >= first + 4, `level-triggered: ${calls() - first} callbacks in 5 turns with the datagram unread`);
      assert.equal(drainUdp(rx.fd).length, 1);
      const drained = calls();
      await turns(5);
      assert.equal(calls(), drained, 'called back after the fd was drained');
    } finally {
      watch.close();
    }
  });

  it('stop() stops the callbacks, start() resumes them, and a closed watch refuses start()', async () => {
    send(rx.port);
    const { watch, calls } = counted(rx.fd);
    try {
      await waitFor('the first callback', () => (calls() > 0 ? true : undefined));
      watch.stop();
      watch.stop(); // idempotent
      const stopped = calls();
      await turns(5);
      assert.equal(calls(), stopped, 'called back while stopped');
      watch.start();
      await turns(3);
      assert.ok(calls() > stopped, 'no callback after start() with the datagram still waiting');
    } finally {
      watch.close();
    }
    watch.close(); // idempotent
    const closed = calls();
    await turns(3);
    assert.equal(calls(), closed, 'called back after close()');
    assert.throws(
      () => watch.start(),
      (e: unknown) => e instanceof TunError && e.code === 'EBADF' && /closed/.test(e.message),
    );
  });

  it('calls back for a TUN queue once the kernel routes a packet into it', async () => {
    const tun = openLabTun(lab);
    const seen: Uint8Array[] = [];
    const ring = PacketRing.create({ capacity: 64, slotBytes: slotBytesFor(1500) });
    const lane = new SlotCursor(ring);
    const poller = RingPoller.tun(tun.queueFd(0), ring);
    // The callback reads, as the inline shard does (the kernel may queue IPv6 chatter too).
    const { watch } = counted(tun.queueFd(0), () => {
      poller.read();
      lane.drain(() => true);
      consume(ring, (p) => (seen.push(Uint8Array.from(p)), true));
    });
    const to = UdpSocket.open({ family: 4, address: '0.0.0.0', netnsFd: lab.fd });
    try {
      assert.ok(to.sendTo(Uint8Array.of(0xab, 0xcd), 4, Uint8Array.from(PEER_ADDR.split('.').map(Number)), 9));
      const isOurs = (p: Uint8Array) =>
        p[0] === 0x45 && p[9] === 17 && p.subarray(16, 20).join('.') === PEER_ADDR && p[28] === 0xab && p[29] === 0xcd;
      await waitFor('our datagram, read from the TUN in the callback', () => (seen.some(isOurs) ? true : undefined));
    } finally {
      watch.close();
      poller.close();
      to.close();
      tun.close();
    }
  });

  it("closing the caller's fd first is safe: the watch keeps its dup until close(), which releases the socket", async () => {
    const port = rx.port;
    const { watch, calls } = counted(rx.fd);
    rx.close();
    try {
      // The socket lives on in the watch's dup: a datagram to its port is still seen.
      send(port);
      await waitFor('a callback for the socket behind the closed fd', () => (calls() > 0 ? true : undefined));
    } finally {
      watch.close();
    }
    // Released: the port binds again, and the fd number (likely the same one) can be watched afresh.
    rx = UdpSocket.open({ family: 4, address: '127.0.0.1', port, netnsFd: lab.fd });
    const again = counted(rx.fd);
    try {
      send(rx.port);
      await waitFor('a callback on the new socket', () => (again.calls() > 0 ? true : undefined));
    } finally {
      again.watch.close();
    }
  });

  it('a watch closed amid traffic, from its own callback or between turns, calls back no more, round after round', async () => {
    for (let round = 0; round < 6; round++) {
      const fromCallback = round % 2 === 0;
      const { watch, calls } = counted(rx.fd, (w) => fromCallback && w.close());
      send(rx.port, 200);
      await waitFor(`round ${round}: a callback`, () => (calls() > 0 ? true : undefined));
      if (!fromCallback) watch.close();
      const ended = calls();
      send(rx.port, 50); // readable again right after close()
      await turns(5);
      assert.equal(calls(), ended, `round ${round}: called back after close()`);
      assert.ok(drainUdp(rx.fd).length > 0);
    }
  });

  it('a process whose watch it closed amid traffic exits by itself (the handle is gone from the loop)', async () => {
    // The cage ending amid traffic: its sockets still flooded when the plane closes.
    const script = `
      import { UdpSocket, watchReadable } from './src/index.ts';
      const LOCALHOST = Uint8Array.of(127, 0, 0, 1);
      for (const fromCallback of [true, false]) {
        const rx = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: 3 });
        const tx = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: 3 });
        const flood = () => { for (let i = 0; i < 100; i++) tx.sendTo(Uint8Array.of(i), 4, LOCALHOST, rx.port); };
        flood();
        await new Promise((done) => {
          const w = watchReadable(rx.fd, () => {
            flood();
            if (fromCallback) { w.close(); done(); }
            else setImmediate(() => { w.close(); done(); });
          });
        });
        rx.close();
        tx.close();
      }
      console.log('closed');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'inherit', lab.fd],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Generous for a slow machine (the child loads tsx and the addon); a leaked handle never exits.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const code = await exited;
      assert.equal(out.trim(), 'closed');
      assert.equal(code, 0, 'the process did not exit by itself');
    } finally {
      clearTimeout(timer);
    }
  });

  it('refuses bad input with clear errors', () => {
    assert.throws(() => watchReadable(-1, () => {}), /fd must be >= 0/);
    assert.throws(() => watchReadable(1.5, () => {}), /fd must be a 32-bit integer/);
    assert.throws(() => watchReadable(rx.fd, undefined as unknown as () => void), /expects a callback/);
    const s = open();
    const fd = s.fd;
    s.close();
    assert.throws(
      () => watchReadable(fd, () => {}),
      (e: unknown) => e instanceof TunError && e.code === 'EBADF',
    );
  });
});
