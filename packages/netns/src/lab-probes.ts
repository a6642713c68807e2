// What the suites that use the lab look at from outside: an fd's open flags, a
// process's life, the namespace of every thread (an addon must not leave one behind in a lab), the
// host's links (a lab device must never appear there), what a fresh Node loads
// when it imports a module, and a bounded wait for a condition.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Rtnl } from './rtnl.js';

export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** open(2) flags of one of this process's fds, from /proc. */
export function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags:'));
  return Number.parseInt(line?.split(/\s+/)[1] ?? '0', 8);
}

/** The network namespace ("net:[inode]") of every thread of this process. */
export function netnsOfEveryThread(): string[] {
  return readdirSync('/proc/self/task').map((tid) => readlinkSync(`/proc/self/task/${tid}/ns/net`));
}

/** Whether `pid` is a live process: a zombie (an orphan lingers as one until init reaps it) is not. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Names of the links in this process's (the host's) namespace. */
export function hostLinkNames(): string[] {
  const nl = Rtnl.open();
  try {
    return nl.links().map((l) => l.name);
  } finally {
    nl.close();
  }
}

/** Resolves with the first value `poll` returns that is not undefined; rejects after `ms`, or as soon as `poll` throws. */
export function waitFor<T>(what: string, poll: () => T | undefined, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      let value: T | undefined;
      try {
        value = poll();
      } catch (err) {
        reject(err);
        return;
      }
      if (value !== undefined) resolve(value);
      else if (Date.now() > deadline) reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

// Run in a fresh Node with plain `node --input-type=module`, no loader hooks, so
// nothing but the import itself is measured. /proc/self/maps lists each dlopen'd
// .node file by its real path, whoever loaded it; the require cache is shared by
// every CommonJS file (piscina and prom-client are CommonJS, also under ESM).
const PROBE = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
await import(process.argv[1]);
const addons = readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map((line) => line.trim().split(/\\s+/)[5] ?? '').filter((path) => path.endsWith('.node'));
const cjs = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(JSON.stringify({ addons: [...new Set(addons)], cjs }));
`;

export interface Loaded {
  /** Every native addon mapped into the process, by real path. */
  addons: string[];
  /** Every CommonJS file loaded. */
  cjs: string[];
}

/**
 * What a fresh Node holds after importing `specifier`: an absolute path, or a package name
 * resolved from the current directory (a workspace package's own directory when its tests run).
 */
export function loadedBy(specifier: string): Loaded {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, specifier], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`importing ${specifier} in a fresh Node failed (${r.error?.message ?? `status ${r.status}`}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Loaded;
}

/** The files among `cjs` that belong to the npm package `name`. */
export function fromPackage(cjs: string[], name: string): string[] {
  return cjs.filter((path) => path.includes(`/node_modules/${name}/`));
}
