// What a stage-2 attempt has acquired (namespace fd, TUN, sockets, servers,
// files), as undo steps pushed right after each acquisition: a failure half-way
// through undoes exactly what was made, and a second attempt starts clean.
import type { Logger } from '@wirecage/wg-engine';

export type Cleanups = (() => void | Promise<void>)[];

/** Undoes in reverse order; one failing step does not keep the others from running. */
export async function runCleanups(cleanups: Cleanups, log: Logger): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (err) {
      log.debug(`cleanup: ${(err as Error).message}`);
    }
  }
}
