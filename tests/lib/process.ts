import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { formatCommand } from './exec.js';
import { WaitTimeoutError } from './wait.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: Error;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How much of the combined stdout+stderr to keep for diagnostics. Default 64 KiB. */
  outputLimit?: number;
}

/** Tail buffer: long-running daemons may print without bound, tests only need the end. */
class OutputTail {
  private text = '';
  private dropped = false;
  constructor(private readonly limit: number) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit) {
      this.text = this.text.slice(this.text.length - this.limit);
      this.dropped = true;
    }
  }
  toString(): string {
    return this.dropped ? `[...earlier output dropped]\n${this.text}` : this.text;
  }
}

/**
 * A long-running child in its own process group, so stopping it also reaches whatever it forked.
 * Its output is kept (tail) for error messages.
 */
export class LabProcess {
  readonly child: ChildProcess;
  readonly command: string;
  readonly exited: Promise<ExitInfo>;
  private readonly tail: OutputTail;
  private exitInfo: ExitInfo | null = null;

  constructor(cmd: string, args: readonly string[], opts: SpawnOptions = {}) {
    this.command = formatCommand(cmd, args);
    this.tail = new OutputTail(opts.outputLimit ?? 64 * 1024);
    this.child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
    this.child.stdout?.setEncoding('utf8').on('data', (s: string) => this.tail.push(s));
    this.child.stderr?.setEncoding('utf8').on('data', (s: string) => this.tail.push(s));
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        // 'error' without a pid means spawn failed and 'exit' will never come.
        if (this.child.pid === undefined) this.settle({ code: null, signal: null, error }, resolve);
      });
      this.child.once('exit', (code, signal) => this.settle({ code, signal }, resolve));
    });
  }

  private settle(info: ExitInfo, resolve: (i: ExitInfo) => void): void {
    if (this.exitInfo !== null) return;
    this.exitInfo = info;
    resolve(info);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Null while running. */
  get exitStatus(): ExitInfo | null {
    return this.exitInfo;
  }

  get running(): boolean {
    return this.exitInfo === null && this.child.pid !== undefined;
  }

  output(): string {
    return this.tail.toString();
  }

  describe(): string {
    const s = this.exitInfo;
    const state =
      s === null
        ? `running as pid ${this.pid}`
        : s.error
          ? `failed to start: ${s.error.message}`
          : s.signal !== null
            ? `killed by ${s.signal}`
            : `exited with code ${s.code}`;
    const out = this.output().trim();
    const where = s === null && this.pid !== undefined ? threadStates(this.pid) : '';
    return `${this.command} (${state})${out === '' ? ', no output' : `, output:\n${out}`}${where}`;
  }

  /** Throws if the process has ended: for use inside waitFor predicates. */
  assertRunning(): void {
    if (!this.running) throw new Error(`process ended early: ${this.describe()}`);
  }

  /**
   * SIGTERM to the group, SIGKILL after `graceMs`. Only signals while the leader is unreaped, so a
   * recycled pid/pgid can never be hit; stragglers that outlive their leader are the caller's to sweep.
   */
  async stop(graceMs = 2_000, killWaitMs = 5_000): Promise<ExitInfo> {
    if (this.exitInfo !== null || this.child.pid === undefined) return this.exited;
    this.signalGroup('SIGTERM');
    if (await this.waitExit(graceMs)) return this.exited;
    this.signalGroup('SIGKILL');
    if (await this.waitExit(killWaitMs)) return this.exited;
    throw new WaitTimeoutError(`${this.command} (pid ${this.pid}) did not exit within ${killWaitMs} ms of SIGKILL`);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.exitInfo !== null || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }

  private waitExit(ms: number): Promise<boolean> {
    if (this.exitInfo !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/**
 * What each thread of a running process is doing, from /proc: its state, the kernel function it sleeps
 * in, and the CPU time it used, so a process that stopped answering tells frozen (R) from blocked (S, and where).
 */
function threadStates(pid: number): string {
  try {
    const lines = readdirSync(`/proc/${pid}/task`).map((tid) => {
      const read = (f: string) => {
        try {
          return readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8').trim();
        } catch {
          return '?';
        }
      };
      const stat = read('stat');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields after comm: state is 3rd overall (index 0 here), utime and stime the 14th and 15th (11, 12).
      // The syscall it is in (number first; "running" when in user space), and the kernel's stack (root only).
      const syscall = read('syscall').split(' ')[0];
      const stack = read('stack')
        .split('\n')
        .map((l) => l.replace(/^\[<[0-9a-f]+>\] /, ''))
        .slice(0, 6)
        .join(' < ');
      return `  ${tid} ${comm}: ${f[0]} wchan ${read('wchan') || '-'} syscall ${syscall} cpu ${f[11]}+${f[12]} ticks${stack && stack !== '?' ? `; ${stack}` : ''}`;
    });
    return `\nits threads now:\n${lines.join('\n')}`;
  } catch {
    return '';
  }
}
