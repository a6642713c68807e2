import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsError, bindUnixDatagram, receiveUnixDatagram, sendUnixDatagram } from '../src/index.js';

describe('unix datagram sockets (sd_notify)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wc-unix-dgram-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['path', 'abstract'] as const) {
    it(`carries a datagram to ${kind === 'path' ? 'a path' : 'an abstract'} name with the sender's pid, uid and gid`, () => {
      const name = kind === 'path' ? join(dir, 'notify') : `@wc-unix-dgram-test-${process.pid}`;
      const fd = bindUnixDatagram(name);
      try {
        if (kind === 'path') assert.ok(statSync(name).isSocket());
        const buf = Buffer.alloc(64);
        assert.equal(receiveUnixDatagram(fd, buf), null, 'nothing waiting: null, not a block');
        sendUnixDatagram(name, Buffer.from('READY=1\nSTATUS=ok'));
        const d = receiveUnixDatagram(fd, buf);
        assert.deepEqual(d, { length: 17, truncated: false, pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
        assert.equal(buf.subarray(0, d.length).toString(), 'READY=1\nSTATUS=ok');
        // Too long for the buffer: cut, and said so.
        sendUnixDatagram(name, Buffer.alloc(100, 1));
        assert.deepEqual(receiveUnixDatagram(fd, buf), {
          length: 64,
          truncated: true,
          pid: process.pid,
          uid: process.getuid!(),
          gid: process.getgid!(),
        });
      } finally {
        closeSync(fd);
      }
    });
  }

  it('throws a NetnsError naming the socket when nobody listens there', () => {
    assert.throws(
      () => sendUnixDatagram(join(dir, 'absent'), Buffer.from('x')),
      (e: unknown) => e instanceof NetnsError && e.code === 'ENOENT' && e.message.includes(join(dir, 'absent')),
    );
    assert.throws(
      () => sendUnixDatagram(`@wc-unix-dgram-absent-${process.pid}`, Buffer.from('x')),
      (e: unknown) => e instanceof NetnsError && e.code === 'ECONNREFUSED',
    );
  });

  it('refuses names that do not fit sun_path, and empty ones', () => {
    assert.throws(() => sendUnixDatagram(`/${'x'.repeat(107)}`, Buffer.from('x')), /1 to 107 bytes/);
    assert.throws(() => bindUnixDatagram(''), /1 to 107 bytes/);
    assert.throws(() => bindUnixDatagram('a\0b'), /must not contain NUL/);
  });
});
