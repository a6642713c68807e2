// Replacing this process with another program (execve), for a Node process
// that has nothing left to do but wait: the new program keeps the pid, so the
// caller's signals and exit status reach it directly.
import { native } from './native.js';

/**
 * Execs argv[0] (an absolute path) with exactly `env`, handing it `input` to
 * read on fd 3 (a memfd, so its size is not limited by a pipe buffer) and
 * `extraFds` as fds 4, 5, ... in this order. Only those and fds 0-2 survive
 * (everything Node opens is close-on-exec). Returns only by throwing a
 * NetnsError (the program is missing, execve failed, an extra fd is not open).
 */
export function execWithInput(
  argv: readonly string[],
  env: Record<string, string>,
  input: Uint8Array,
  extraFds: readonly number[] = [],
): never {
  if (argv.length === 0 || !argv[0]!.startsWith('/')) throw new TypeError('execWithInput needs argv[0] as an absolute path');
  return native.execWithInput(
    argv[0]!,
    [...argv],
    Object.entries(env).map(([k, v]) => `${k}=${v}`),
    input,
    [...extraFds],
  );
}
