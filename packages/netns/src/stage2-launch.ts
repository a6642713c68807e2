// Starting a privileged "stage 2" Node script from an unprivileged stage 1, as `wirecage run` and
// `wirecagesrv up` both do: stage 2 runs as root of a fresh user namespace (through wirecage-userns,
// since Node cannot unshare one itself), gets its spec as JSON on fd 3 (never argv or the
// environment: it carries keys and tokens) and a clean environment, and its exit status comes back
// in the shell's convention. The stage-2 side reads the spec with readSpec().
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { execWithInput } from './exec.js';
import { exitStatusToCode } from './spawn.js';
import { userNamespaceCommand } from './userns.js';

/** Where stage 2 finds its spec. */
export const STAGE2_SPEC_FD = 3;
/** Where stage 2 finds the first of `extraFds`; the next ones follow in order. */
export const STAGE2_FIRST_EXTRA_FD = 4;

export interface Stage2Options {
  /** The stage-2 script, run by this process's Node (process.execPath). */
  script: string;
  /** Any JSON value: stage 2 reads it from fd 3 with readSpec(). */
  spec: unknown;
  /**
   * The complete environment of stage 2. The default is PATH alone: nothing of stage 1 should
   * reach stage 2 except through the spec.
   */
  env?: Record<string, string>;
  /** Open fds stage 2 inherits as fd 4, 5, ... in this order (STAGE2_FIRST_EXTRA_FD). */
  extraFds?: readonly number[];
  /**
   * true (the default): stage 2 runs as root of a new user namespace. Started as root, the
   * namespace maps every id (so stage 2 can drop to any user, and reads files as root would);
   * otherwise the caller alone becomes root inside. false: stage 2 runs here, as this process's user.
   */
  userNamespace?: boolean;
}

export interface LaunchStage2Options extends Stage2Options {
  /** Signals this process passes on to stage 2 while it runs (it then no longer dies of them itself). */
  forwardSignals?: readonly NodeJS.Signals[];
  /** A forwarded signal for which this is true is held back: stage 2 got it already (from a terminal, say). */
  skipSignal?: (signal: NodeJS.Signals) => boolean;
}

/** The same id on both sides, for all 2^32 ids. */
const IDENTITY_MAP = '0:0:4294967295';

function stage2Argv(options: Stage2Options, dieWithParent: boolean): string[] {
  if (options.userNamespace === false) return [process.execPath, options.script];
  const [helper, ...rest] = userNamespaceCommand(process.execPath, [options.script], { dieWithParent });
  const maps = process.getuid?.() === 0 ? ['--uid-map', IDENTITY_MAP, '--gid-map', IDENTITY_MAP] : [];
  return [helper!, ...maps, ...rest];
}

function specBytes(spec: unknown): Buffer {
  const json = JSON.stringify(spec);
  if (json === undefined) throw new TypeError('the stage-2 spec must be a JSON value');
  return Buffer.from(json);
}

const cleanEnv = (): Record<string, string> => ({ PATH: process.env.PATH ?? '/usr/bin:/bin' });

/**
 * Becomes stage 2 (execve: it keeps this process's pid, so the caller's signals and the exit
 * status pass straight through, and this process's memory is freed). For a stage 1 with nothing
 * left to do once stage 2 runs. The spec goes in a memfd on fd 3; only fds 0-3 and `extraFds`
 * (as 4, 5, ...) survive. Returns
 * only by throwing.
 */
export function execStage2(options: Stage2Options): never {
  return execWithInput(stage2Argv(options, false), options.env ?? cleanEnv(), specBytes(options.spec), options.extraFds);
}

/**
 * Starts stage 2 (killed with this process, in the user-namespace case) and resolves to its exit
 * status: its code, or 128 + N for death by signal N. Stage 2 has been spawned when this returns,
 * so the caller may close its copies of `extraFds` at once. Throws a TypeError at once for a spec
 * that is not JSON or an extra fd that is not an fd; rejects if stage 2 could not be started.
 */
export function launchStage2(options: LaunchStage2Options): Promise<number> {
  const extraFds = options.extraFds ?? [];
  for (const fd of extraFds) {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`extraFds: ${fd} is not an fd`);
  }
  const spec = specBytes(options.spec);
  const [file, ...args] = stage2Argv(options, true);
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit', 'pipe', ...extraFds];
  const child = spawn(file!, args, { stdio, env: options.env ?? cleanEnv() });
  const pipe = child.stdio[STAGE2_SPEC_FD] as NodeJS.WritableStream;
  pipe.on('error', () => {}); // stage 2 died early: its exit status tells why
  pipe.end(spec);

  const skip = options.skipSignal ?? (() => false);
  const handlers = (options.forwardSignals ?? []).map((signal) => {
    const forward = () => {
      if (!skip(signal)) child.kill(signal);
    };
    process.on(signal, forward);
    return () => process.off(signal, forward);
  });
  return new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(exitStatusToCode(signal ? { code: null, signal } : { code: code!, signal: null })));
  }).finally(() => handlers.forEach((off) => off()));
}

/** Stage 2 was started without a spec on fd 3, or with one that is not JSON. */
export class SpecError extends Error {
  override readonly name = 'SpecError';
}

/**
 * Stage 2's side: reads fd 3 to its end, closes it and returns the parsed JSON. Throws a SpecError
 * when fd 3 is not a pipe, socket (Node's 'pipe') or file (a memfd): nobody gave a spec, and Node's
 * own fds took the free numbers (fd 3 is then its epoll fd); or when it does not hold JSON.
 */
export function readSpec<T>(): T {
  let kind;
  try {
    const st = fstatSync(STAGE2_SPEC_FD);
    kind = st.isFIFO() || st.isSocket() || st.isFile() ? null : 'not a pipe, socket or file';
  } catch (err) {
    kind = `not open (${(err as NodeJS.ErrnoException).code})`;
  }
  if (kind) throw new SpecError(`no spec on fd ${STAGE2_SPEC_FD}: it is ${kind}; start this script with launchStage2 or execStage2`);
  let text;
  try {
    text = readFileSync(STAGE2_SPEC_FD, 'utf8');
  } finally {
    closeSync(STAGE2_SPEC_FD);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new SpecError(`the spec on fd ${STAGE2_SPEC_FD} is not JSON (${(err as Error).message})`);
  }
}
