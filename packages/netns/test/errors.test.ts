import assert from 'node:assert/strict';
import { NetnsError, exitCodeForSpawnError, exitStatusToCode, parseCidr, withContext } from '../src/index.js';

describe('NetnsError', () => {
  it('carries code, errno and syscall, and names them in the message', () => {
    const e = new NetnsError(1, 'unshare', 'creating a network namespace');
    assert.equal(e.code, 'EPERM');
    assert.equal(e.errno, 1);
    assert.equal(e.syscall, 'unshare');
    assert.equal(e.name, 'NetnsError');
    assert.match(e.message, /^creating a network namespace: unshare failed: EPERM \(operation not permitted\)$/);
  });

  it('appends the kernel message and takes a context prefix', () => {
    assert.throws(
      () =>
        withContext('adding 10.0.0.1/24 to eth0', () => {
          throw new NetnsError(17, 'RTM_NEWADDR', '', 'ipv4: Address already assigned');
        }),
      {
        name: 'NetnsError',
        code: 'EEXIST',
        kernelMessage: 'ipv4: Address already assigned',
        message: 'adding 10.0.0.1/24 to eth0: RTM_NEWADDR failed: EEXIST (file already exists): ipv4: Address already assigned',
      },
    );
  });
});

describe('exit code helpers', () => {
  it('maps spawn failures to 127 / 126 / 125', () => {
    assert.equal(exitCodeForSpawnError(new NetnsError(2, 'execve')), 127);
    assert.equal(exitCodeForSpawnError(new NetnsError(13, 'execve')), 126);
    assert.equal(exitCodeForSpawnError(new NetnsError(8, 'execve')), 126);
    assert.equal(exitCodeForSpawnError(new NetnsError(2, 'chdir')), 125);
    assert.equal(exitCodeForSpawnError(new Error('x')), 125);
  });

  it('turns a signal death into 128 + N', () => {
    assert.equal(exitStatusToCode({ code: 3, signal: null }), 3);
    assert.equal(exitStatusToCode({ code: null, signal: 'SIGKILL' }), 137);
    assert.equal(exitStatusToCode({ code: null, signal: 'SIGTERM' }), 143);
  });
});

describe('parseCidr', () => {
  it('parses v4, v6 and bare addresses', () => {
    assert.deepEqual(parseCidr('10.0.0.2/24'), { address: '10.0.0.2', prefixLen: 24, family: 4 });
    assert.deepEqual(parseCidr('fd00::2/64'), { address: 'fd00::2', prefixLen: 64, family: 6 });
    assert.deepEqual(parseCidr('::/0'), { address: '::', prefixLen: 0, family: 6 });
    assert.deepEqual(parseCidr('192.0.2.1'), { address: '192.0.2.1', prefixLen: 32, family: 4 });
  });

  it('rejects garbage with the input in the message', () => {
    assert.throws(() => parseCidr('10.0.0.2/33'), /bad prefix length in "10.0.0.2\/33"/);
    assert.throws(() => parseCidr('10.0.0/8'), /not an IP address/);
    assert.throws(() => parseCidr('fd00::1/+5'), /bad prefix length/);
  });
});
