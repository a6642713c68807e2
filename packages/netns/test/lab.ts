// What this package's tests add to the lab (src/lab.ts): reaching a namespace held
// only as an fd (createNetns() makes no name), and a caged command's output.
import { execFileSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { pipe, spawnInCage, type CageSpawnOptions, type ExitStatus } from '../src/index.js';
import { Lab } from '../src/lab.js';

export { O_CLOEXEC, fdFlags, netnsOfEveryThread } from '../src/lab.js';

/** A path through which other tools (nsenter) can reach a namespace we only hold as an fd. */
export const nsPath = (fd: number): string => `/proc/${process.pid}/fd/${fd}`;

/** Runs a command with `ip`-style tools inside the namespace behind `fd`. */
export function inNetns(fd: number, cmd: string, ...args: string[]): string {
  return execFileSync('nsenter', [`--net=${nsPath(fd)}`, cmd, ...args], { encoding: 'utf8' });
}

export function readAll(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = new Socket({ fd, readable: true, writable: false });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export interface Captured {
  status: ExitStatus;
  stdout: string;
  stderr: string;
}

/** spawnInCage with stdout/stderr captured through pipes. */
export async function runCaged(options: Omit<CageSpawnOptions, 'stdio'>): Promise<Captured> {
  const [outR, outW] = pipe();
  const [errR, errW] = pipe();
  let child;
  try {
    child = spawnInCage({ ...options, stdio: [-1, outW, errW] });
  } finally {
    closeSync(outW);
    closeSync(errW);
  }
  const [status, stdout, stderr] = await Promise.all([child.wait(), readAll(outR), readAll(errR)]);
  return { status, stdout, stderr };
}

export interface LoopbackNetns {
  /** The namespace's fd, valid from before() on. */
  readonly ns: number;
  /** Records an fd to close in after(); returns it. */
  keep(fd: number): number;
  /** Forgets a kept fd that Node has adopted (Node closes it). */
  release(fd: number): void;
}

/**
 * Registers before()/after() in the calling describe(): a lab namespace with lo up, removed
 * afterwards together with every fd given to keep() and not release()d.
 */
export function loopbackNetns(): LoopbackNetns {
  const fds: number[] = [];
  const netns = new Lab();
  const lab = {
    ns: -1,
    keep(fd: number): number {
      fds.push(fd);
      return fd;
    },
    release(fd: number): void {
      const i = fds.indexOf(fd);
      if (i >= 0) fds.splice(i, 1);
    },
  };
  before(() => {
    lab.ns = netns.namespace('lo').fd;
  });
  after(async () => {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {
        // adopted by Node without release(), and closed there
      }
    }
    await netns.dispose();
  });
  return lab;
}
