import { describeErrno } from '@wirecage/napi-glue';

/**
 * A failed system call (or rtnetlink request) from the native layer.
 * `code` is the errno name ('EPERM'), `errno` its positive number, `syscall`
 * the call that failed ('unshare', 'setns', 'RTM_NEWADDR', 'execve', ...),
 * `kernelMessage` rtnetlink's own explanation when the kernel gave one.
 */
export class NetnsError extends Error {
  override readonly name = 'NetnsError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly kernelMessage: string | undefined;

  constructor(errno: number, syscall: string, context = '', kernelMessage = '') {
    const [code, text] = describeErrno(errno);
    super(`${context ? `${context}: ` : ''}${syscall} failed: ${code} (${text})${kernelMessage ? `: ${kernelMessage}` : ''}`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.kernelMessage = kernelMessage || undefined;
  }
}

/** Prefixes `context` to a NetnsError's message; other errors pass through unchanged. */
export function withContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof NetnsError) err.message = `${context}: ${err.message}`;
    throw err;
  }
}
