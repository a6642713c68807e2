// Readiness on the main thread's event loop, with no thread of its own: libuv
// polls the fd (level-triggered) and calls back while it is readable; reading
// is the caller's. For code that reads its fds itself but must not block, as
// the inline data-plane shard of workers 0.
import type { TunError } from './errors.js';
import { native } from './native.js';

export interface ReadableWatch {
  /** Watches again after stop(), or after an error stopped the watch. */
  start(): void;
  /** No more callbacks until start(); the fd stays watched-for (cheap to resume). */
  stop(): void;
  /** Ends the watch for good and releases its dup of the fd (the process may then exit). Idempotent. */
  close(): void;
}

/**
 * Calls onReadable(null) on each loop turn while fd has something to read (or a
 * pending error: the read that follows reports it). It watches a dup of fd, so
 * closing fd first is safe: the watch then goes on watching the same file until
 * close(). A poll error calls onReadable(err) once and stops the watch. An open
 * watch keeps the process alive, as an open socket does.
 */
export function watchReadable(fd: number, onReadable: (err: TunError | null) => void): ReadableWatch {
  return new native.ReadableWatch(fd, onReadable);
}
