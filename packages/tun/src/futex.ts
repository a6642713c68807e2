import { native, type FutexWaitResult } from './native.js';

export type { FutexWaitResult };

function check(words: Int32Array, index: number, fn: string): void {
  if (!(words instanceof Int32Array) || !(words.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(`${fn} expects an Int32Array over a SharedArrayBuffer`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= words.length) {
    throw new RangeError(`${fn}: index ${index} is outside the array (length ${words.length})`);
  }
}

/**
 * Sleeps while `words[index] === expected` (FUTEX_WAIT on the shared memory),
 * at most `timeoutMs` (Infinity: no limit). 'ok' when woken (possibly
 * spuriously: re-check the condition), 'not-equal' when the word already
 * differed, 'timed-out'. Blocks the calling thread: use it in workers, never
 * on the main thread. Pairs with futexWake and native ring threads, not with
 * Atomics.notify (V8 keeps its waiters in user space).
 */
export function futexWait(words: Int32Array, index: number, expected: number, timeoutMs: number): FutexWaitResult {
  check(words, index, 'futexWait');
  return native.futexWait(words, index, expected | 0, timeoutMs);
}

/** Wakes up to `count` threads sleeping in futexWait on `words[index]`; returns how many woke. Never blocks. */
export function futexWake(words: Int32Array, index: number, count = 0x7fffffff): number {
  check(words, index, 'futexWake');
  return native.futexWake(words, index, Math.min(count, 0x7fffffff));
}
