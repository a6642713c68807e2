// The engine's logging seam. Nothing on the packet path logs above debug, and
// no key material is ever passed to a logger: peers are named by a short
// prefix of their *public* key.

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

const ORDER: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** A logger that writes lines at or above level to a sink (stderr by default). */
export function createLogger(level: LogLevel, sink: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const on = (l: LogLevel) => ORDER[l] <= ORDER[level];
  return {
    error: (m) => on('error') && sink(`error: ${m}`),
    warn: (m) => on('warn') && sink(`warn: ${m}`),
    info: (m) => on('info') && sink(`info: ${m}`),
    debug: (m) => on('debug') && sink(`debug: ${m}`),
  } as Logger;
}
