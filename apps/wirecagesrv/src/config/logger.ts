// The server's logger, whose level a reload changes (--log-level in the
// settings file). The engine's createLogger fixes its level when made, so
// this one is made at debug and filters in front of it: every part of the
// server holds this one object, and a new level reaches all of them at once.
import { createLogger, type Logger, type LoggerOptions } from '@wirecage/wg-engine';
import type { ServerLogLevel } from './live-settings.js';

const ORDER: Record<ServerLogLevel, number> = { error: 1, warn: 2, info: 3, debug: 4 };

export interface SwitchableLogger extends Logger {
  setLevel(level: ServerLogLevel): void;
  readonly level: ServerLogLevel;
}

export function switchableLogger(level: ServerLogLevel, opts: LoggerOptions): SwitchableLogger {
  const inner = createLogger('debug', opts);
  let at = ORDER[level];
  let current = level;
  return {
    error: (m, f) => at >= 1 && inner.error(m, f),
    warn: (m, f) => at >= 2 && inner.warn(m, f),
    info: (m, f) => at >= 3 && inner.info(m, f),
    debug: (m, f) => at >= 4 && inner.debug(m, f),
    setLevel(l) {
      current = l;
      at = ORDER[l];
    },
    get level() {
      return current;
    },
  };
}
