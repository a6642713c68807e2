import { native } from './native.js';

/** Names the calling thread (at most 15 bytes) so `top -H` and /proc/PID/task tell threads apart. */
export function setThreadName(name: string): void {
  native.setThreadName(name);
}
