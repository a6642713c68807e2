import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import {
  NetnsError,
  bindSocket,
  connectSocket,
  recvSocketError,
  sendOnSocket,
  listenSocket,
  recvWithOrigDst,
  socketAddress,
  socketInNetns,
  watchReadable,
} from '../src/index.js';
import { O_CLOEXEC, fdFlags, loopbackNetns } from './lab.js';

const O_NONBLOCK = 0o4000;

describe('sockets in another network namespace', function () {
  const lab = loopbackNetns();
  const open = (...args: Parameters<typeof socketInNetns>): number => lab.keep(socketInNetns(...args));

  it('opens a non-blocking close-on-exec socket that lives in that namespace', async () => {
    const fd = open(lab.ns, 4, 'tcp', { reuseAddr: true });
    assert.ok(fdFlags(fd) & O_CLOEXEC);
    assert.ok(fdFlags(fd) & O_NONBLOCK);
    bindSocket(fd, '127.0.0.1', 0);
    listenSocket(fd);
    const { address, port } = socketAddress(fd);
    assert.equal(address, '127.0.0.1');
    assert.ok(port > 0);

    // A TCP listener adopted by Node, reached from a second socket opened in the same namespace...
    const server = net.createServer((c) => c.end('inside'));
    server.listen({ fd });
    await once(server, 'listening');
    lab.release(fd);
    try {
      const clientFd = open(lab.ns, 4, 'tcp');
      const client = new net.Socket({ fd: clientFd });
      lab.release(clientFd);
      client.connect(port, '127.0.0.1');
      const [data] = (await once(client, 'data')) as [Buffer];
      assert.equal(data.toString(), 'inside');
      client.destroy();

      // ...and not from this process's namespace, where nothing listens on that port.
      const outside = net.connect(port, '127.0.0.1');
      const [err] = (await once(outside, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ECONNREFUSED');
    } finally {
      server.close();
    }
  });

  it('binds a transparent socket to an address the namespace does not own; a plain one is refused', () => {
    const plain = open(lab.ns, 4, 'udp');
    assert.throws(
      () => bindSocket(plain, '192.0.2.7', 5000),
      (e: NetnsError) =>
        e instanceof NetnsError && e.syscall === 'bind' && e.code === 'EADDRNOTAVAIL' && /192\.0\.2\.7:5000/.test(e.message),
    );
    const transparent = open(lab.ns, 4, 'udp', { transparent: true, reuseAddr: true });
    bindSocket(transparent, '192.0.2.7', 5000);
    assert.deepEqual(socketAddress(transparent), { address: '192.0.2.7', port: 5000 });
    const v6 = open(lab.ns, 6, 'udp', { transparent: true });
    bindSocket(v6, '2001:db8::7', 5000);
    assert.deepEqual(socketAddress(v6), { address: '2001:db8::7', port: 5000 });
  });

  it('receives with the original destination, woken by watchReadable, never blocking', async () => {
    const fd = open(lab.ns, 6, 'udp', { origDstAddr: true });
    bindSocket(fd, '::1', 0);
    const { port } = socketAddress(fd);
    const buf = Buffer.alloc(4);
    assert.equal(recvWithOrigDst(fd, buf), null, 'nothing waiting');

    const sender = open(lab.ns, 6, 'udp');
    bindSocket(sender, '::1', 0);
    const from = socketAddress(sender);
    const s = dgram.createSocket('udp6');
    const listening = once(s, 'listening'); // emitted at once when adopting an fd
    s.bind({ fd: sender });
    lab.release(sender);
    await listening;

    const got = new Promise<ReturnType<typeof recvWithOrigDst>[]>((resolve) => {
      const all: ReturnType<typeof recvWithOrigDst>[] = [];
      const w = watchReadable(fd, (err) => {
        assert.equal(err, null);
        for (let d = recvWithOrigDst(fd, buf); d !== null; d = recvWithOrigDst(fd, buf))
          all.push({ ...d, text: buf.subarray(0, d.length).toString() } as never);
        if (all.length === 2) {
          w.stop();
          resolve(all);
        }
      });
    });
    s.send('hi', port, '::1');
    s.send('too long', port, '::1');
    const [a, b] = await got;
    s.close();
    assert.deepEqual(a, {
      length: 2,
      truncated: false,
      source: '::1',
      sourcePort: from.port,
      destination: '::1',
      destinationPort: port,
      text: 'hi',
    });
    assert.equal(b!.truncated, true);
    assert.equal(b!.length, 4);
  });

  for (const [family, loopback, origin, type] of [
    [4, '127.0.0.1', 'icmp', 3],
    [6, '::1', 'icmp6', 1],
  ] as const) {
    it(`queues the ICMP error about a datagram to a closed port with recvErr (IPv${family}), and wakes watchReadable`, async () => {
      const fd = open(lab.ns, family, 'udp', { recvErr: true });
      // A port nothing listens on: bind a socket to get a free one, then close it.
      const probe = open(lab.ns, family, 'udp');
      bindSocket(probe, loopback, 0);
      const { port } = socketAddress(probe);
      lab.release(probe);
      closeSync(probe);
      connectSocket(fd, loopback, port);
      const buf = Buffer.alloc(64);
      assert.equal(recvSocketError(fd, buf), null, 'nothing queued yet');
      // The watcher sees each queued error as readable (libuv's POLLERR), and keeps watching afterwards.
      const entries: ReturnType<typeof recvSocketError>[] = [];
      let wake = () => {};
      const w = watchReadable(fd, (err) => {
        assert.equal(err, null);
        for (let e = recvSocketError(fd, buf); e !== null; e = recvSocketError(fd, buf))
          entries.push({ ...e, text: buf.subarray(0, e.length).toString() } as never);
        wake();
      });
      try {
        for (const text of ['anyone there?', 'still nobody?']) {
          const woken = new Promise<void>((resolve) => (wake = resolve));
          assert.equal(sendOnSocket(fd, Buffer.from(text)), true);
          await woken;
        }
      } finally {
        w.stop();
      }
      const expected = {
        error: 'ECONNREFUSED',
        origin,
        type,
        code: family === 4 ? 3 : 4,
        info: 0,
        offender: loopback,
        length: 13,
        truncated: false,
      };
      // The quoted payload comes with each.
      assert.deepEqual(entries, [
        { ...expected, text: 'anyone there?' },
        { ...expected, text: 'still nobody?' },
      ]);
      assert.equal(recvSocketError(fd, buf), null, 'one entry per error');
      // Reading the queue cleared the socket's pending error: the next send goes out.
      assert.equal(sendOnSocket(fd, Buffer.from('again')), true);
    });
  }

  it('names a failed connect with the address', () => {
    const fd = open(lab.ns, 6, 'udp');
    // The namespace has no route off loopback.
    assert.throws(
      () => connectSocket(fd, '2001:db8::1', 53),
      (e: NetnsError) =>
        e instanceof NetnsError && e.syscall === 'connect' && e.code === 'ENETUNREACH' && /\[2001:db8::1\]:53/.test(e.message),
    );
  });

  it("opens in this process's own namespace with null, dual-stack only when asked", async () => {
    const fd = open(null, 6, 'tcp', { ipv6Only: false, reuseAddr: true });
    bindSocket(fd, '::', 0);
    listenSocket(fd);
    const server = net.createServer((c) => c.end());
    server.listen({ fd });
    lab.release(fd);
    await once(server, 'listening');
    try {
      const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      await once(c, 'connect');
      c.destroy();
    } finally {
      server.close();
    }
  });

  it('names the failing call', () => {
    assert.throws(
      () => socketInNetns(999_999, 4, 'udp'),
      (e: NetnsError) => e instanceof NetnsError && e.syscall === 'setns' && e.code === 'EBADF',
    );
    assert.throws(() => socketInNetns(lab.ns, 5 as 4, 'udp'), TypeError);
    assert.throws(() => bindSocket(open(lab.ns, 4, 'udp'), 'nonsense', 1), /not an IP address: nonsense/);
  });
});
