import { native } from './native.js';

/**
 * Creates a new network namespace and returns an O_CLOEXEC fd referring to it.
 * No thread of this process moves: a throwaway thread unshares and opens its own
 * /proc/thread-self/ns/net. The namespace lives while the fd (or a process in it) does.
 */
export function createNetns(): number {
  return native.createNetns();
}

/**
 * [readFd, writeFd], close-on-exec unless told otherwise (an fd meant to be inherited
 * by a process started some other way). Handy for the stdio of a spawned command.
 */
export function pipe(closeOnExec = true): [number, number] {
  return native.pipe(closeOnExec);
}
