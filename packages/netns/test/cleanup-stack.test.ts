import assert from 'node:assert/strict';
import { CleanupStack } from '../src/cleanup-stack.js';

describe('CleanupStack', () => {
  it('runs every step newest first, after a failing one too, then throws the first failure', async () => {
    const ran: string[] = [];
    const stack = new CleanupStack();
    stack.push(() => void ran.push('registry'));
    stack.push(() => {
      ran.push('device');
      return Promise.reject(new Error('device failed'));
    });
    stack.push(() => {
      ran.push('api');
      throw new Error('api failed');
    });
    await assert.rejects(stack.unwind(), /api failed/);
    assert.deepEqual(ran, ['api', 'device', 'registry']);
  });

  it('runs each step once: a second unwind has nothing left to close', async () => {
    let closes = 0;
    const stack = new CleanupStack();
    stack.push(() => void closes++);
    await stack.unwind();
    await stack.unwind();
    assert.equal(closes, 1);
  });

  it('with onError, hands it every failure, runs every step and resolves', async () => {
    const ran: string[] = [];
    const errors: string[] = [];
    const stack = new CleanupStack();
    stack.push(() => void ran.push('tun'));
    stack.push(() => {
      ran.push('uapi');
      throw new Error('uapi failed');
    });
    stack.push(() => {
      ran.push('metrics');
      return Promise.reject(new Error('metrics failed'));
    });
    await stack.unwind((err) => errors.push((err as Error).message));
    assert.deepEqual(ran, ['metrics', 'uapi', 'tun']);
    assert.deepEqual(errors, ['metrics failed', 'uapi failed']);
  });
});
