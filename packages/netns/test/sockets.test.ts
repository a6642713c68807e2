import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import {
  NetnsError,
  bindSocket,
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
    assert.throws(() => bindSocket(plain, '192.0.2.7', 5000), (e: NetnsError) => e instanceof NetnsError && e.syscall === 'bind' && e.code === 'EADDRNOTAVAIL' && /192\.0\.2\.7:5000/.test(e.message));
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
        for (let d = recvWithOrigDst(fd, buf); d !== null; d = recvWithOrigDst(fd, buf)) all.push({ ...d, text: buf.subarray(0, d.length).toString() } as never);
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
    assert.deepEqual(a, { length: 2, truncated: false, source: '::1', sourcePort: from.port, destination: '::1', destinationPort: port, text: 'hi' });
    assert.equal(b!.truncated, true);
    assert.equal(b!.length, 4);
  });

  it('opens in this process\'s own namespace with null, dual-stack only when asked', async () => {
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
    assert.throws(() => socketInNetns(999_999, 4, 'udp'), (e: NetnsError) => e instanceof NetnsError && e.syscall === 'setns' && e.code === 'EBADF');
    assert.throws(() => socketInNetns(lab.ns, 5 as 4, 'udp'), TypeError);
    assert.throws(() => bindSocket(open(lab.ns, 4, 'udp'), 'nonsense', 1), /not an IP address: nonsense/);
  });
});
