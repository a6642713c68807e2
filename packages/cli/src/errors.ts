// The error boundary's two kinds of failure. Expected ones (the user's
// input, the machine, the network, a server's answer) are a WirecageError:
// one line `wirecage: MESSAGE` and the command's exit status. Anything else
// is a bug: it says so, exits 125, and shows its stack when asked (a
// TypeError reported as a plain message would hide where it came from).
//
// No oclif and no lower package is imported here: stage 2 reports through
// this file too, and every command loads it.
import { EXIT_WIRECAGE_FAILED } from './cage/spec.js';

/**
 * An expected failure. `exitCode` undefined: the command's own failure status (125 for `run` and
 * stage 2, 1 for the other commands), so one error (a bad config file) exits as each command says.
 */
export class WirecageError extends Error {
  override name = 'WirecageError';
  constructor(
    message: string,
    readonly exitCode?: number,
  ) {
    super(message);
  }
}

// The lower packages' typed errors, which are all the machine's or the input's answer: matched by
// their exact name so that classifying does not load the TUN and netns addons into every command
// (keygen would pay for them). error-boundary.test.ts checks the names. (@wirecage/metrics's
// ListenAddressError is not here: stage 1 words a bad --metrics-listen as a RunError.)
export const EXPECTED_LOWER_ERRORS: ReadonlySet<string> = new Set([
  'NetnsError', // @wirecage/netns: a failed system call (unshare, setns, rtnetlink, execve)
  'TunError', // @wirecage/tun: opening or configuring the TUN
  'SecretFileError', // @wirecage/wg-engine: a key or config file that cannot be read or written
  'KeyFormatError', // @wirecage/wg-engine: text that is not a WireGuard key
]);

/** `err` as the expected failure it is, or null when it is a bug. */
export function expectedFailure(err: unknown): WirecageError | null {
  if (err instanceof WirecageError) return err;
  if (!(err instanceof Error)) return null;
  // Node's own system errors (bind EADDRINUSE, open EACCES, connect ECONNREFUSED) carry the failed call.
  if (EXPECTED_LOWER_ERRORS.has(err.name) || typeof (err as NodeJS.ErrnoException).syscall === 'string')
    return new WirecageError(err.message);
  return null;
}

export interface ReportOptions {
  /** The exit status of an expected failure that names none. */
  failureExit: number;
  /** Print an internal error's stack. */
  stack: boolean;
  /** How to ask for the stack, for the line an internal error prints without it. */
  stackHint: string;
  write?: (text: string) => void;
}

/** Reports `err` on stderr as the boundary does and returns the exit status. */
export function reportFailure(err: unknown, opts: ReportOptions): number {
  const write = opts.write ?? ((t: string) => process.stderr.write(t));
  const expected = expectedFailure(err);
  if (expected) {
    write(`wirecage: ${expected.message}\n`);
    return expected.exitCode ?? opts.failureExit;
  }
  const message = err instanceof Error ? err.message : String(err);
  write(`wirecage: internal error, please report: ${message}\n`);
  if (opts.stack) write(`${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
  else write(`wirecage: run it again with ${opts.stackHint} to see where it happened\n`);
  // 125 in every command: wirecage itself failed, whatever the command's own statuses mean.
  return EXIT_WIRECAGE_FAILED;
}

/** WIRECAGE_DEBUG=1 asks every command for an internal error's stack (`run` also takes --log-level debug). */
export function stackWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.WIRECAGE_DEBUG === '1';
}
