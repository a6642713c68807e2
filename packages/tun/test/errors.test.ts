import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Tun, TunError } from '../src/index.js';
import { NetnsLab } from './lab.js';

const packageDir = new URL('..', import.meta.url).pathname;
const openFdCount = (): number => readdirSync('/proc/self/fd').length;

describe('Tun.open errors', () => {
  let lab: NetnsLab;
  let scratch: string;

  before(() => {
    lab = NetnsLab.create();
    scratch = mkdtempSync(join(tmpdir(), 'wct-tun-'));
  });
  after(() => {
    lab?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('names the device path and the fix when the TUN device is missing', () => {
    const devicePath = join(scratch, 'missing', 'tun');
    const before = openFdCount();
    assert.throws(
      () => Tun.open({ netnsFd: lab.fd, devicePath }),
      (err: unknown) => {
        assert.ok(err instanceof TunError);
        assert.equal(err.code, 'ENOENT');
        assert.equal(err.errno, 2);
        assert.equal(err.syscall, 'open');
        assert.equal(err.path, devicePath);
        assert.match(err.message, new RegExp(`open ${devicePath} failed: ENOENT`));
        assert.match(err.message, /modprobe tun/);
        return true;
      },
    );
    assert.equal(openFdCount(), before, 'a failed open leaves no fd behind');
  });

  it('says the device is not accessible (EACCES) to a user without read+write on it', async () => {
    const devicePath = join(scratch, 'tun-root-only');
    execFileSync('mknod', ['-m', '0600', devicePath, 'c', '10', '200']);
    // The same node works for root, so the refusal below is about permissions only.
    Tun.open({ name: 'wctperm0', netnsFd: lab.fd, devicePath }).close();
    const script = `
      import { Tun } from './src/index.ts';
      try { Tun.open({ name: 'wctperm1', devicePath: ${JSON.stringify(devicePath)} }); console.log('{}'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, syscall: e.syscall, path: e.path, message: e.message })); }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: packageDir,
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    });
    const err = JSON.parse(stdout) as Record<string, string>;
    assert.equal(err.name, 'TunError');
    assert.equal(err.code, 'EACCES');
    assert.equal(err.syscall, 'open');
    assert.equal(err.path, devicePath);
    assert.match(err.message!, new RegExp(`${devicePath} is not readable and writable by uid 65534`));
  });

  it('says when netnsFd is not a network namespace', () => {
    const notNetns = openSync('/dev/null', 'r');
    try {
      assert.throws(
        () => Tun.open({ netnsFd: notNetns }),
        (err: unknown) =>
          err instanceof TunError &&
          err.syscall === 'setns' &&
          err.code === 'EINVAL' &&
          err.message.includes(`netnsFd ${notNetns} is not an open network namespace`),
      );
    } finally {
      closeSync(notNetns);
    }
  });

  it('says which MTU the interface refused, and leaves no interface or fd behind', () => {
    const before = openFdCount();
    assert.throws(
      () => Tun.open({ name: 'wctmtu', netnsFd: lab.fd, queues: 3, mtu: 40 }),
      (err: unknown) => err instanceof TunError && err.syscall === 'ioctl(SIOCSIFMTU)' && err.message.includes('MTU 40'),
    );
    assert.equal(openFdCount(), before);
    assert.ok(!lab.linkNames().includes('wctmtu'));
  });

  it('rejects invalid options before touching the kernel', () => {
    assert.throws(() => Tun.open({ name: 'a-name-longer-than-15', netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ name: 'a/b', netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ name: '', netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ queues: 0, netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ queues: 257, netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ mtu: 1.5, netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ maxPacketSize: 65536, netnsFd: lab.fd }), RangeError);
    assert.throws(() => Tun.open({ netnsFd: -1 }), RangeError);
    assert.deepEqual(lab.linkNames(), ['lo']);
  });
});
