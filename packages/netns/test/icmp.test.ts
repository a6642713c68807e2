import assert from 'node:assert/strict';
import { NetnsError, icmpReceive, icmpSend, icmpSocketInNetns, watchReadable } from '../src/index.js';
import { O_CLOEXEC, fdFlags, inNetns, loopbackNetns } from './lab.js';

/** RFC 1071 checksum: the tests build their own messages (the addon never looks inside one). */
function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function echo(type: number, id: number, seq: number, payload: string): Buffer {
  const m = Buffer.concat([Buffer.alloc(8), Buffer.from(payload)]);
  m[0] = type;
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(seq, 6);
  m.writeUInt16BE(checksum(m), 2);
  return m;
}

/** Waits for the next message on `fd` (or fails after `ms`). */
function next(fd: number, ms = 2000): Promise<{ data: Buffer; source: string; destination: string | null; ttl: number | null }> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.alloc(2048);
    const timer = setTimeout(() => (w.stop(), reject(new Error(`nothing arrived on fd ${fd} within ${ms} ms`))), ms);
    const w = watchReadable(fd, (err) => {
      if (err) return (w.stop(), clearTimeout(timer), reject(err));
      const m = icmpReceive(fd, buf);
      if (m === null) return;
      w.stop();
      clearTimeout(timer);
      resolve({ data: Buffer.from(buf.subarray(0, m.length)), source: m.source, destination: m.destination, ttl: m.ttl });
    });
  });
}

describe('ICMP sockets', function () {
  const lab = loopbackNetns();
  const open = (...args: Parameters<typeof icmpSocketInNetns>): number => lab.keep(icmpSocketInNetns(...args));

  it('reads echo requests on a filtered raw socket with their destination and TTL, the IPv4 header included', async () => {
    const listener = open(lab.ns, 4, { raw: true, acceptTypes: [8] });
    assert.ok(fdFlags(listener) & O_CLOEXEC);
    const everything = open(lab.ns, 4, { raw: true });
    const sender = open(lab.ns, 4, { raw: true });
    assert.equal(icmpSend(sender, echo(8, 0x1234, 7, 'hello'), '127.0.0.1', { ttl: 33 }), true);
    const got = await next(listener);
    assert.equal(got.source, '127.0.0.1');
    assert.equal(got.destination, '127.0.0.1');
    assert.equal(got.ttl, 33);
    assert.equal(got.data[0]! >> 4, 4, 'starts with the IPv4 header');
    const icmp = got.data.subarray((got.data[0]! & 15) * 4);
    assert.deepEqual(icmp, echo(8, 0x1234, 7, 'hello'));
    // The kernel answered; the filtered socket never sees the reply, the other one does (after the request).
    assert.equal((await next(everything)).data[20], 8);
    const reply = await next(everything);
    assert.equal(reply.data[20], 0);
    assert.equal(icmpReceive(listener, Buffer.alloc(64)), null, 'the echo reply was filtered out');
  });

  it('sends from an address the namespace does not own only when transparent', async () => {
    const listener = open(lab.ns, 4, { raw: true, acceptTypes: [8] });
    const plain = open(lab.ns, 4, { raw: true });
    assert.throws(
      () => icmpSend(plain, echo(8, 1, 1, 'x'), '127.0.0.1', { source: '192.0.2.7' }),
      (e: unknown) => e instanceof NetnsError && e.syscall === 'sendmsg',
    );
    const transparent = open(lab.ns, 4, { raw: true, transparent: true });
    icmpSend(transparent, echo(8, 1, 2, 'x'), '127.0.0.1', { source: '192.0.2.7' });
    assert.equal((await next(listener)).source, '192.0.2.7');
  });

  it('does the same for ICMPv6, whose checksum the kernel fills in', async () => {
    const listener = open(lab.ns, 6, { raw: true, acceptTypes: [128] });
    const sender = open(lab.ns, 6, { raw: true, transparent: true });
    const request = echo(128, 9, 3, 'six');
    request.writeUInt16BE(0, 2);
    icmpSend(sender, request, '::1', { source: '2001:db8::7', ttl: 9 });
    const got = await next(listener);
    assert.equal(got.source, '2001:db8::7');
    assert.equal(got.destination, '::1');
    assert.equal(got.ttl, 9);
    assert.equal(got.data[0], 128);
    assert.notEqual(got.data.readUInt16BE(2), 0, 'checksummed');
    assert.deepEqual(got.data.subarray(4), request.subarray(4));
  });

  it('opens a ping socket only where ping_group_range allows it, and pings through it', async () => {
    // A new namespace starts with "1 0": nobody.
    assert.throws(
      () => icmpSocketInNetns(lab.ns, 4),
      (e: unknown) => e instanceof NetnsError && e.code === 'EACCES' && e.syscall === 'socket',
    );
    inNetns(lab.ns, 'sysctl', '-q', '-w', `net.ipv4.ping_group_range=${process.getegid!()} ${process.getegid!()}`);
    for (const [family, to, type] of [
      [4, '127.0.0.1', 0],
      [6, '::1', 129],
    ] as const) {
      const ping = open(lab.ns, family);
      icmpSend(ping, echo(family === 4 ? 8 : 128, 0, 5, 'ping'), to);
      const reply = await next(ping);
      assert.equal(reply.source, to);
      assert.equal(reply.data[0], type, 'an echo reply, without the IP header');
      assert.equal(reply.data.readUInt16BE(6), 5, 'same sequence');
      assert.equal(reply.data.subarray(8).toString(), 'ping');
    }
  });

  it('checks its arguments', () => {
    assert.throws(() => icmpSocketInNetns(lab.ns, 4, { raw: true, acceptTypes: [128] }), /types 0-31/);
    const raw = open(lab.ns, 4, { raw: true });
    assert.throws(() => icmpSend(raw, echo(8, 1, 1, ''), 'nowhere'), /not an IP address/);
    assert.throws(() => icmpSend(raw, echo(8, 1, 1, ''), '127.0.0.1', { ttl: 0 }), /ttl must be 1-255/);
    assert.throws(() => icmpSend(raw, echo(8, 1, 1, ''), '127.0.0.1', { source: '::1' }), /differ in family/);
  });
});
