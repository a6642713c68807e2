import { execFileSync } from 'node:child_process';
import { closeSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { pipe, spawnInCage, type CageSpawnOptions, type ExitStatus } from '../src/index.js';

/** A path through which other tools (nsenter) can reach a namespace we only hold as an fd. */
export const nsPath = (fd: number): string => `/proc/${process.pid}/fd/${fd}`;

/** Runs a command with `ip`-style tools inside the namespace behind `fd`. */
export function inNetns(fd: number, cmd: string, ...args: string[]): string {
  return execFileSync('nsenter', [`--net=${nsPath(fd)}`, cmd, ...args], { encoding: 'utf8' });
}

export function netnsOfEveryThread(): string[] {
  return readdirSync('/proc/self/task').map((tid) => readlinkSync(`/proc/self/task/${tid}/ns/net`));
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

export function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('flags:'));
  return Number.parseInt(line?.split(/\s+/)[1] ?? '0', 8);
}

export const O_CLOEXEC = 0o2000000;
