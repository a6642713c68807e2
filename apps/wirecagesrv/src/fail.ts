import { Errors } from '@oclif/core';

/**
 * Ends a command with exit status 1 and one plain line on stderr,
 * "wirecagesrv: <message>", instead of oclif's boxed and re-wrapped error,
 * so that paths and long messages stay whole and greppable.
 */
export function fail(message: string): never {
  process.stderr.write(`wirecagesrv: ${message}\n`);
  throw new Errors.ExitError(1);
}
