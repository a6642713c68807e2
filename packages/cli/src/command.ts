// The error boundary of every wirecage command (errors.ts says what is
// expected). oclif's own errors (a bad flag or argument, exit 2) keep
// oclif's reporting, as in every oclif CLI.
import { Command } from '@oclif/core';
import { reportFailure, stackWanted } from './errors.js';

/** oclif's errors (parse errors, this.exit) carry an `oclif` record with their exit status. */
export function isOclifError(err: unknown): err is Error & { oclif: { exit?: number } } {
  return err instanceof Error && typeof (err as { oclif?: unknown }).oclif === 'object';
}

export abstract class WirecageCommand extends Command {
  /** The exit status of this command's expected failures that name none (its help's "Exit status"). */
  static failureExit = 1;

  /** Whether an internal error prints its stack; `run` adds --log-level debug. */
  protected wantsStack(): boolean {
    return stackWanted();
  }

  protected stackHint(): string {
    return 'WIRECAGE_DEBUG=1';
  }

  override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (isOclifError(err)) return super.catch(err);
    process.exitCode = reportFailure(err, {
      failureExit: (this.constructor as typeof WirecageCommand).failureExit,
      stack: this.wantsStack(),
      stackHint: this.stackHint(),
    });
    return undefined;
  }
}
