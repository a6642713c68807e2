import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** What is awaited, for the timeout message ("wireguard-go UAPI socket wgab12 to appear"). */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Extra diagnostics appended to the timeout message (e.g. a child's output). */
  describe?: () => string | Promise<string>;
}

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

type Falsy = false | null | undefined | 0 | '';

/**
 * Polls `predicate` until it returns a truthy value, and returns that value. It is the allowed way to
 * synchronise with another process: a condition with a deadline, never a fixed sleep.
 * A predicate that throws ends the wait at once with that error (use it for "the process died").
 */
export async function waitFor<T>(predicate: () => T | Falsy | Promise<T | Falsy>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const intervalMs = opts.intervalMs ?? 25;
  const start = Date.now();
  const deadline = start + timeoutMs;
  let attempts = 0;
  for (;;) {
    attempts++;
    const value = await predicate();
    if (value) return value;
    const now = Date.now();
    if (now >= deadline) {
      let extra = '';
      if (opts.describe) {
        try {
          extra = `\n${await opts.describe()}`;
        } catch (e) {
          extra = `\n(collecting diagnostics failed: ${(e as Error).message})`;
        }
      }
      throw new WaitTimeoutError(`timed out after ${now - start} ms (${attempts} checks) waiting for ${opts.what}${extra}`);
    }
    await delay(Math.min(intervalMs, deadline - now));
  }
}
