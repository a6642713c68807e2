// What the install suites share lives for the whole mocha run, not for one
// suite: packing every workspace and compiling the addons cost a minute or
// more, so each is done once. Its lab is torn down by a root hook (registered
// when this module is first loaded), after every suite has run and every step
// started here has settled.
import { Lab } from '../lib/netns.js';

/** How long a step started here may still run when the last suite ends (a single suite run alone). */
const SETTLE_MS = 10 * 60_000;

interface RunState {
  lab: Lab;
  made: Map<string, Promise<unknown>>;
  timings: string[];
}

// Mocha loads a spec file with require() where it can and with import() where it cannot (tsx serves
// both), so one run may evaluate this module twice, once per module system: what must exist once
// per run is kept on globalThis, not in this module's scope.
const KEY = Symbol.for('wirecage.tests.install.run');
const shared = globalThis as typeof globalThis & { [KEY]?: RunState };
if (shared[KEY] === undefined) {
  const state: RunState = { lab: new Lab(), made: new Map(), timings: [] };
  shared[KEY] = state;
  after(async function () {
    this.timeout(SETTLE_MS + 60_000);
    await Promise.allSettled(state.made.values());
    await state.lab.teardown();
  });
}
const state = shared[KEY];

export const runLab = state.lab;

/** "pack natives 6.1 s, ..." for every step timed here, in the order they ended (steps may overlap). */
export const runTimings: readonly string[] = state.timings;

/**
 * `make`, run at the first call of any function made with this `name` in the run; every call gets that
 * one promise. A failure is reported to each caller that awaits it, and to no one else (no unhandled
 * rejection when no suite needs it).
 */
export function oncePerRun<T>(name: string, make: () => Promise<T>): () => Promise<T> {
  return () => {
    let made = state.made.get(name) as Promise<T> | undefined;
    if (made === undefined) {
      made = make();
      made.catch(() => {});
      state.made.set(name, made);
    }
    return made;
  };
}

/** Runs `fn` and adds "what 12.3 s" (its own wall time) to runTimings. */
export async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  const value = await fn();
  state.timings.push(`${what} ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return value;
}
