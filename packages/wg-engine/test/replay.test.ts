import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { COUNTER_BITS_TOTAL, REJECT_AFTER_MESSAGES } from '../src/constants.js';
import { REPLAY_WINDOW_BYTES, REPLAY_WINDOW_SIZE, ReplayWindow } from '../src/replay.js';
import type { ReplayWorkerData } from './fixtures/replay-worker.js';

function freshWindow(): ReplayWindow {
  return new ReplayWindow(new SharedArrayBuffer(REPLAY_WINDOW_BYTES), 0);
}

/** A small seeded PRNG (mulberry32), so a failing shuffle can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** 0..n-1, shuffled inside consecutive chunks: no counter trails the ones before it by `chunk` or more. */
function chunkShuffled(n: number, chunk: number, random: () => number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(start + chunk, n);
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
  }
  return order;
}

/**
 * The kernel's semantics written the obvious way: a counter is fresh when it is
 * below Reject-After-Messages, at most REPLAY_WINDOW_SIZE behind the newest one,
 * and not seen before.
 */
class ReferenceWindow {
  private newest = -1n;
  private readonly seen = new Set<bigint>();

  check(counter: bigint): boolean {
    if (counter < 0n || counter >= REJECT_AFTER_MESSAGES) return false;
    if (this.newest - counter > BigInt(REPLAY_WINDOW_SIZE)) return false;
    if (this.seen.has(counter)) return false;
    this.seen.add(counter);
    if (counter > this.newest) this.newest = counter;
    return true;
  }
}

describe('ReplayWindow', () => {
  it('sizes the window as the kernel does: COUNTER_BITS_TOTAL less one 32-bit block', () => {
    assert.equal(REPLAY_WINDOW_SIZE, COUNTER_BITS_TOTAL - 32);
    assert.equal(REPLAY_WINDOW_BYTES % 8, 0);
    assert.ok(REPLAY_WINDOW_BYTES >= COUNTER_BITS_TOTAL / 8);
  });

  it('rejects a region that is misaligned or does not fit', () => {
    const sab = new SharedArrayBuffer(REPLAY_WINDOW_BYTES + 8);
    assert.throws(() => new ReplayWindow(sab, 4), /multiple of 8/);
    assert.throws(() => new ReplayWindow(sab, 16), /needs \d+ bytes/);
    assert.doesNotThrow(() => new ReplayWindow(sab, 8));
  });

  // drivers/net/wireguard/selftest/counter.c, case for case, with T_LIM and
  // REJECT_AFTER_MESSAGES taken from our constants as the kernel takes its own.
  it('passes the Linux kernel counter selftest sequence', () => {
    const sab = new SharedArrayBuffer(REPLAY_WINDOW_BYTES);
    const counter = new ReplayWindow(sab, 0);
    const failures: string[] = [];
    let testNum = 0;
    const T_INIT = (): void => counter.reset();
    const T_LIM = BigInt(REPLAY_WINDOW_SIZE + 1);
    const WINDOW = BigInt(REPLAY_WINDOW_SIZE);
    const REJECT = REJECT_AFTER_MESSAGES;
    const T = (n: bigint, v: boolean): void => {
      ++testNum;
      if (counter.check(n) !== v) failures.push(`${testNum}: check(${n}) should be ${v}`);
    };

    T_INIT();
    /*  1 */ T(0n, true);
    /*  2 */ T(1n, true);
    /*  3 */ T(1n, false);
    /*  4 */ T(9n, true);
    /*  5 */ T(8n, true);
    /*  6 */ T(7n, true);
    /*  7 */ T(7n, false);
    /*  8 */ T(T_LIM, true);
    /*  9 */ T(T_LIM - 1n, true);
    /* 10 */ T(T_LIM - 1n, false);
    /* 11 */ T(T_LIM - 2n, true);
    /* 12 */ T(2n, true);
    /* 13 */ T(2n, false);
    /* 14 */ T(T_LIM + 16n, true);
    /* 15 */ T(3n, false);
    /* 16 */ T(T_LIM + 16n, false);
    /* 17 */ T(T_LIM * 4n, true);
    /* 18 */ T(T_LIM * 4n - (T_LIM - 1n), true);
    /* 19 */ T(10n, false);
    /* 20 */ T(T_LIM * 4n - T_LIM, false);
    /* 21 */ T(T_LIM * 4n - (T_LIM + 1n), false);
    /* 22 */ T(T_LIM * 4n - (T_LIM - 2n), true);
    /* 23 */ T(T_LIM * 4n + 1n - T_LIM, false);
    /* 24 */ T(0n, false);
    /* 25 */ T(REJECT, false);
    /* 26 */ T(REJECT - 1n, true);
    /* 27 */ T(REJECT, false);
    /* 28 */ T(REJECT - 1n, false);
    /* 29 */ T(REJECT - 2n, true);
    /* 30 */ T(REJECT + 1n, false);
    /* 31 */ T(REJECT + 2n, false);
    /* 32 */ T(REJECT - 2n, false);
    /* 33 */ T(REJECT - 3n, true);
    /* 34 */ T(0n, false);

    T_INIT();
    for (let i = 1n; i <= WINDOW; ++i) T(i, true);
    T(0n, true);
    T(0n, false);

    T_INIT();
    for (let i = 2n; i <= WINDOW + 1n; ++i) T(i, true);
    T(1n, true);
    T(0n, false);

    T_INIT();
    for (let i = WINDOW + 1n; i-- > 0n;) T(i, true);

    T_INIT();
    for (let i = WINDOW + 2n; i-- > 1n;) T(i, true);
    T(0n, false);

    T_INIT();
    for (let i = WINDOW + 1n; i-- > 1n;) T(i, true);
    T(WINDOW + 1n, true);
    T(0n, false);

    T_INIT();
    for (let i = WINDOW + 1n; i-- > 1n;) T(i, true);
    T(0n, true);
    T(WINDOW + 1n, true);

    assert.deepEqual(failures, []);
    assert.equal(testNum, 34 + (REPLAY_WINDOW_SIZE + 2) * 2 + (REPLAY_WINDOW_SIZE + 1) * 4 + 2 + 1);
  });

  it('stops at Reject-After-Messages, and a refused counter does not move the window', () => {
    const w = freshWindow();
    assert.equal(w.check(REJECT_AFTER_MESSAGES), false);
    assert.equal(w.check((1n << 64n) - 1n), false);
    assert.equal(w.check(1n << 64n), false);
    assert.equal(w.check(-1n), false);
    assert.equal(w.check(0n), true, 'the refused counters above must not have advanced the window');

    assert.equal(w.check(REJECT_AFTER_MESSAGES - 1n), true);
    assert.equal(w.check(REJECT_AFTER_MESSAGES - 1n), false);
    assert.equal(w.check(REJECT_AFTER_MESSAGES), false);
    assert.equal(w.check(REJECT_AFTER_MESSAGES - 1n - BigInt(REPLAY_WINDOW_SIZE)), true);
    assert.equal(w.check(REJECT_AFTER_MESSAGES - 2n - BigInt(REPLAY_WINDOW_SIZE)), false);
  });

  it('accepts every counter reordered inside the window exactly once', () => {
    const w = freshWindow();
    const newest = 1_000_000n;
    assert.equal(w.check(newest), true);
    const random = prng(7);
    const order = chunkShuffled(REPLAY_WINDOW_SIZE, REPLAY_WINDOW_SIZE, random);
    for (const back of order) assert.equal(w.check(newest - 1n - BigInt(back)), true, `counter ${newest - 1n - BigInt(back)}`);
    for (const back of order) assert.equal(w.check(newest - 1n - BigInt(back)), false);
    assert.equal(w.check(newest - 1n - BigInt(REPLAY_WINDOW_SIZE)), false, 'one past the window is too old');
    assert.equal(w.check(newest), false);
  });

  it('agrees with a reference model across the 2^32, 2^53 and Reject-After-Messages boundaries', () => {
    const random = prng(20240611);
    // A run climbs about 13M counters: each base puts a boundary on its way.
    const bases = [0n, (1n << 32n) - 6_000_000n, (1n << 53n) - 6_000_000n, REJECT_AFTER_MESSAGES - 12_000_000n];
    const steps = [1, 2, 31, 32, 33, 500, REPLAY_WINDOW_SIZE - 1, REPLAY_WINDOW_SIZE, REPLAY_WINDOW_SIZE + 1, 40_000];
    for (const base of bases) {
      const w = freshWindow();
      const ref = new ReferenceWindow();
      let cursor = base;
      for (let i = 0; i < 20_000; i++) {
        const r = random();
        let c: bigint;
        if (r < 0.6) {
          cursor += BigInt(1 + Math.floor(random() * 4));
          c = cursor - BigInt(Math.floor(random() * 64));
        } else if (r < 0.9) {
          c = cursor - BigInt(steps[Math.floor(random() * steps.length)]!);
        } else {
          cursor += BigInt(steps[Math.floor(random() * steps.length)]!);
          c = cursor;
        }
        if (c < 0n) c = 0n;
        assert.equal(w.check(c), ref.check(c), `base ${base}, step ${i}: check(${c})`);
      }
    }
  });

  it('keeps windows at different offsets of one buffer independent', () => {
    const sab = new SharedArrayBuffer(REPLAY_WINDOW_BYTES * 2);
    const a = new ReplayWindow(sab, 0);
    const b = new ReplayWindow(sab, REPLAY_WINDOW_BYTES);
    assert.equal(a.check(5n), true);
    assert.equal(b.check(5n), true);
    assert.equal(a.check(100_000n), true);
    assert.equal(b.check(6n), true);
    assert.equal(a.check(6n), false);
  });

  it('fails closed, without hanging, when a lock holder died inside the critical section', function () {
    this.timeout(5000);
    const sab = new SharedArrayBuffer(REPLAY_WINDOW_BYTES);
    const w = new ReplayWindow(sab, 0);
    const lockWord = new Int32Array(sab, 0, 1); // the region's first word is the lock (see replay.ts)
    assert.equal(w.check(1n), true);

    Atomics.store(lockWord, 0, 1); // a holder that will never release
    let t0 = performance.now();
    assert.equal(w.check(2n), false);
    const firstWait = performance.now() - t0;
    assert.ok(firstWait >= 400 && firstWait < 3000, `gave up after ${firstWait} ms`);
    t0 = performance.now();
    for (let i = 0; i < 100; i++) assert.equal(w.check(3n), false);
    assert.ok(performance.now() - t0 < 100, 'later callers must not each wait out the stall');

    Atomics.store(lockWord, 0, 0); // the holder turns out to be alive and releases
    assert.equal(w.check(2n), true, 'a dropped counter is still fresh once the lock is back');
    assert.equal(w.check(1n), false);

    Atomics.store(lockWord, 0, 1);
    w.reset(); // a fresh keypair in this slot starts unlocked and empty
    assert.equal(w.check(1n), true);
  });

  describe('shared by worker threads', function () {
    this.timeout(20000);

    async function race(threads: number, base: bigint, count: number, seed: number): Promise<void> {
      const sab = new SharedArrayBuffer(8 + REPLAY_WINDOW_BYTES);
      const offset = 8; // inside the buffer, as windows sit in keypair slots
      const order = new Int32Array(new SharedArrayBuffer(count * 4));
      order.set(chunkShuffled(count, REPLAY_WINDOW_SIZE, prng(seed)));
      const accepted = new Int32Array(new SharedArrayBuffer(count * 4));
      const gate = new Int32Array(new SharedArrayBuffer(4));
      const data: ReplayWorkerData = { sab, offset, base, order, accepted, gate };

      // Node 20 applies no --import hooks given in a Worker's execArgv
      // (nodejs/node#47747), so the worker boots through tsx's tsImport.
      const entry = new URL('./fixtures/replay-worker.ts', import.meta.url).href;
      const tsxApi = createRequire(import.meta.url).resolve('tsx/esm/api');
      const boot = `require(${JSON.stringify(tsxApi)}).tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)});`;

      const workers = Array.from({ length: threads }, () => new Worker(boot, { eval: true, workerData: data }));
      try {
        const ready: Promise<void>[] = [];
        const results: Promise<number>[] = [];
        for (const worker of workers) {
          let onReady!: () => void;
          let onResult!: (n: number) => void;
          let onFailure!: (e: Error) => void;
          const failed = new Promise<never>((_, reject) => (onFailure = reject));
          failed.catch(() => {}); // observed through the races below
          ready.push(Promise.race([new Promise<void>((resolve) => (onReady = resolve)), failed]));
          results.push(Promise.race([new Promise<number>((resolve) => (onResult = resolve)), failed]));
          worker.on('message', (m: { ready?: boolean; accepted?: number }) => {
            if (m.ready) onReady();
            if (m.accepted !== undefined) onResult(m.accepted);
          });
          worker.on('error', onFailure);
          worker.on('exit', (code) => onFailure(new Error(`replay worker exited with code ${code} before reporting`)));
        }
        await Promise.all(ready);
        Atomics.store(gate, 0, 1);
        Atomics.notify(gate, 0);
        const perThread = await Promise.all(results);

        assert.equal(
          perThread.reduce((a, b) => a + b, 0),
          count,
          `acceptances per thread: ${perThread.join(', ')}`,
        );
        const wrong: string[] = [];
        for (let n = 0; n < count && wrong.length < 10; n++) {
          if (accepted[n] !== 1) wrong.push(`${base + BigInt(n)} accepted ${accepted[n]} times`);
        }
        assert.deepEqual(wrong, [], `seed ${seed}`);
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    }

    it('accepts each of 200k locally shuffled counters on exactly one of 4 threads', async () => {
      await race(4, 0n, 200_000, 1);
    });

    it('stays exact on the bigint path, across 2^53 and up to Reject-After-Messages', async () => {
      await race(3, (1n << 53n) - 30_000n, 60_000, 2);
      await race(2, REJECT_AFTER_MESSAGES - 40_000n, 40_000, 3);
    });
  });
});
