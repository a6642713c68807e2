// Removing a lab namespace, and the process-wide safety net behind Lab.dispose():
// a namespace made with `ip netns add` outlives this process (it is a bind mount
// under /run/netns), so whatever a crashed test or an interrupted `wirecage demo`
// did not dispose is removed on exit, and on SIGINT/SIGTERM/SIGHUP when nobody else
// handles the signal. Exit handlers cannot wait, so that path is synchronous.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const live = new Map<string, () => void>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let hooked = false;

function pidsIn(stdout: string): number[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}

function kill(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** Processes still inside a lab namespace (children that outlived a tracked parent) are the lab's too. */
export function killStragglersSync(name: string): void {
  kill(pidsIn(execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })));
}

/** Like killStragglersSync, then waits (bounded) until they are gone, so nothing of the lab survives dispose(). */
export async function killStragglers(name: string, timeoutMs = 5_000): Promise<void> {
  const list = async (): Promise<number[]> => pidsIn((await execFileAsync('ip', ['netns', 'pids', name], { encoding: 'utf8' })).stdout);
  let pids = await list();
  kill(pids);
  const deadline = Date.now() + timeoutMs;
  while (pids.length > 0) {
    if (Date.now() > deadline)
      throw new Error(`processes ${pids.join(', ')} in namespace ${name} did not die within ${timeoutMs} ms of SIGKILL`);
    await new Promise((r) => setTimeout(r, 10));
    pids = await list();
  }
}

function onExit(): void {
  for (const [name, removeSync] of [...live].reverse()) {
    try {
      removeSync();
    } catch (err) {
      process.stderr.write(`lab: could not remove namespace ${name} at exit: ${(err as Error).message}\n`);
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else handles it (mocha, the program): they decide whether to exit, and an exit runs onExit.
  if (process.listenerCount(signal) > 1) return;
  onExit();
  unhook();
  process.kill(process.pid, signal);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.off('exit', onExit);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Tracks a namespace until forget(); `removeSync` tears it down if the process ends first. */
export function track(name: string, removeSync: () => void): void {
  live.set(name, removeSync);
  hook();
}

export function forget(name: string): void {
  live.delete(name);
  // No hooks while nothing is at stake: a process done with its labs keeps Node's own signal behaviour.
  if (live.size === 0) unhook();
}
