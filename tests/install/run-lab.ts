// What the install suites share lives for the whole mocha run, not for one
// suite: packing every workspace and compiling the addons cost a minute or
// more, so each is done once. Its lab is torn down by a root hook (registered
// when this module is loaded), after every suite has run and every step
// started here has settled.
import { Lab } from '../lib/netns.js';

/** How long a step started here may still run when the last suite ends (a single suite run alone). */
const SETTLE_MS = 10 * 60_000;

export const runLab = new Lab();
const started: Promise<unknown>[] = [];

after(async function () {
  this.timeout(SETTLE_MS + 60_000);
  await Promise.allSettled(started);
  await runLab.teardown();
});

/**
 * `make`, run at the first call only; every call gets that one promise. A failure is reported to each
 * caller that awaits it, and to no one else (no unhandled rejection when no suite needs it).
 */
export function oncePerRun<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    if (made === undefined) {
      made = make();
      made.catch(() => {});
      started.push(made);
    }
    return made;
  };
}

/** Runs `fn` and appends "what 12.3 s" (its own wall time) to `times`. */
export async function timed<T>(times: string[], what: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  const value = await fn();
  times.push(`${what} ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return value;
}
