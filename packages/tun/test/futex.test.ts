import assert from 'node:assert/strict';
import { futexWait, futexWake } from '../src/index.js';
import { startWorker } from './workers.js';

describe('futexWait / futexWake', () => {
  it('reads the SharedArrayBuffer memory a worker wrote (the native pointer is the shared memory)', async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const w = startWorker<string>('futex-worker.ts', { words, mode: 'store', value: 0x1234567 });
    await w.ready;
    await w.exited;
    // futexWait compares natively against the word: only equal memory can time out.
    assert.equal(futexWait(words, 1, 0x1234567, 0), 'timed-out');
    assert.equal(futexWait(words, 1, 0, 0), 'not-equal');
  });

  it('wakes a worker sleeping on a word, and reports how many woke', async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const w = startWorker<{ result: string; ms: number; word: number }>('futex-worker.ts', { words, mode: 'wait' });
    await w.ready;
    while (Atomics.load(words, 2) === 0) await new Promise((r) => setTimeout(r, 1));
    // The word stays 0, so the worker can only return 'ok' by being woken; a
    // wake that finds nobody (the worker not in the kernel yet) is retried.
    let woken = 0;
    const deadline = Date.now() + 5000;
    while (woken === 0 && Date.now() < deadline) {
      woken = futexWake(words, 0, 1);
      if (woken === 0) await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(woken, 1);
    const { result, ms, word } = await w.result;
    assert.equal(result, 'ok');
    assert.equal(word, 0);
    assert.ok(ms < 5000, `woke after ${ms} ms`);
  });

  it('times out, and says not-equal without sleeping', () => {
    const words = new Int32Array(new SharedArrayBuffer(8));
    const started = Date.now();
    assert.equal(futexWait(words, 0, 0, 30), 'timed-out');
    assert.ok(Date.now() - started >= 25);
    words[0] = 5;
    assert.equal(futexWait(words, 0, 4, 10_000), 'not-equal');
    assert.equal(futexWake(words, 0), 0);
  });

  it('refuses memory that is not shared, and indexes outside the array', () => {
    assert.throws(() => futexWait(new Int32Array(4), 0, 0, 0), TypeError);
    assert.throws(() => futexWake(new Int32Array(new SharedArrayBuffer(8)), 2), RangeError);
    assert.throws(() => futexWait(new Int32Array(new SharedArrayBuffer(8)), -1, 0, 0), RangeError);
  });
});
