import { execFile } from 'node:child_process';

export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long. Default 10 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. Use it for secrets instead of argv. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code, or null when the command died by a signal (then `signal` says which). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 10_000;

/** Shell-like rendering of a command, for messages only (never run through a shell). */
export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs a command without a shell; never rejects because of the command's exit status. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: opts.env, cwd: opts.cwd, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr, code: 0, signal: null, timedOut: false });
          return;
        }
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals | null };
        if (typeof e.code === 'string') {
          // Spawn failure (ENOENT, EACCES, ...) or maxBuffer overflow: the command did not run to completion.
          reject(new Error(`cannot run ${formatCommand(cmd, args)}: ${e.message}`));
          return;
        }
        const signal = e.signal ?? null;
        resolve({
          stdout,
          stderr,
          code: typeof e.code === 'number' ? e.code : null,
          signal,
          timedOut: e.killed === true && signal === 'SIGKILL',
        });
      },
    );
    // An early-exiting command closes stdin under us; that is its business, not an error of ours.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

export class ExecError extends Error {
  override readonly name = 'ExecError';
  constructor(
    readonly command: string,
    readonly result: ExecResult,
    timeoutMs: number,
  ) {
    const how = result.timedOut
      ? `timed out after ${timeoutMs} ms`
      : result.signal !== null
        ? `was killed by ${result.signal}`
        : `exited with code ${result.code}`;
    const stderr = result.stderr.trim();
    super(`${command} ${how}${stderr === '' ? ' (no stderr)' : `: ${stderr}`}`);
  }
}

/**
 * Runs a command and throws ExecError unless it exits 0. The message holds the command and its stderr
 * but not its stdout, so commands that print keys do not leak them into test output.
 */
export async function runOrThrow(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) throw new ExecError(formatCommand(cmd, args), result, opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
  return result;
}
