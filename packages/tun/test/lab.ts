import { execFile, execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
let counter = 0;

/** A network namespace of the test's own (`ip netns add`), held open as an fd. */
export class NetnsLab {
  readonly name: string;
  readonly fd: number;

  private constructor(name: string) {
    this.name = name;
    execFileSync('ip', ['netns', 'add', name]);
    try {
      this.fd = openSync(`/run/netns/${name}`, 'r');
    } catch (err) {
      execFileSync('ip', ['netns', 'del', name]);
      throw err;
    }
  }

  static create(): NetnsLab {
    return new NetnsLab(`wct${process.pid}x${counter++}`);
  }

  /** `ip -n <ns> ...args`, returning stdout. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8' });
  }

  /** Runs a command inside the namespace without blocking the event loop (packets must flow meanwhile). */
  async exec(...cmd: string[]): Promise<{ code: number; stdout: string }> {
    try {
      const { stdout } = await execFileAsync('ip', ['netns', 'exec', this.name, ...cmd], { encoding: 'utf8' });
      return { code: 0, stdout };
    } catch (err) {
      const e = err as { code?: number; stdout?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '' };
    }
  }

  linkNames(): string[] {
    return (JSON.parse(this.ip('-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname);
  }

  destroy(): void {
    closeSync(this.fd);
    execFileSync('ip', ['netns', 'del', this.name]);
  }
}

export function hostLinkNames(): string[] {
  return (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]).map(
    (l) => l.ifname,
  );
}

/** The network namespace of every thread of this process. */
export function netnsOfEveryThread(): string[] {
  return readdirSync('/proc/self/task').map((tid) => readlinkSync(`/proc/self/task/${tid}/ns/net`));
}

/** open(2) flags of one of our fds, from /proc. */
export function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags:'));
  return Number.parseInt(line?.split(/\s+/)[1] ?? '0', 8);
}

export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** Resolves with the first value `poll` returns that is not undefined, or rejects after `ms`. */
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
