// Where --flow-log writes: stderr for "-", else a file opened for appending,
// created 0600 (what the program contacted is private), never through a
// symlink, and only a regular file. Stage 1 opens it once to report a bad path
// before any namespace exists (and so that it exists when the cage hides it);
// stage 2 opens it again to write.
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { WirecageError } from '../errors.js';

const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW; // libuv adds O_CLOEXEC

/** The fd to append to; '-' is stderr (fd 2, not to be closed). */
export function openFlowLog(target: string): number {
  if (target === '-') return 2;
  let fd: number;
  try {
    fd = openSync(target, FLAGS, 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ELOOP' ? 'it is a symbolic link (the flow log is never written through one)' : e.message;
    throw new WirecageError(`--flow-log ${target}: cannot open: ${why}`);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new WirecageError(`--flow-log ${target}: not a regular file (use - for stderr)`);
  }
  return fd;
}

/** Stage 1's check: the flag's value as stage 2 gets it ('-' or an absolute path), the file made. */
export function checkFlowLog(target: string): string {
  if (target === '') throw new WirecageError('--flow-log needs a file, or - for stderr');
  if (target === '-') return target;
  const path = resolve(target);
  closeSync(openFlowLog(path));
  return path;
}
