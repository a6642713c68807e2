// The facts /readyz rests on, each checked for real: a committed write to the
// registry file, the WireGuard sockets still bound on their port (the NAT
// answers for itself: ReadyNat.ready()).
import Database from 'better-sqlite3';
import { socketAddress } from '@wirecage/netns';
import type { ReadinessCheck } from './readyz.js';

/** How long a probe waits for another writer's lock before calling the registry unwritable. */
const WRITE_WAIT_MS = 500;

/**
 * Commits a heartbeat row (meta key "readyz_heartbeat") on a connection of its own, so that a
 * probe proves what a registration needs: the lock, the WAL written and synced. A connection that
 * failed is reopened by the next probe.
 */
export function registryWritable(path: string): ReadinessCheck & { close(): void } {
  let db: Database.Database | null = null;
  const check = () => {
    try {
      if (!db) {
        db = new Database(path, { fileMustExist: true, timeout: WRITE_WAIT_MS });
        db.pragma('synchronous = FULL');
      }
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(
        'readyz_heartbeat',
        new Date().toISOString(),
      );
      return null;
    } catch (err) {
      db?.close();
      db = null;
      // The answer is public (the API's listener): it says what failed, not where the registry lives.
      return `cannot write to the registry: ${(err as Error).message}`;
    }
  };
  return Object.assign(check, { close: () => db?.close() });
}

/**
 * Every inherited WireGuard fd (the whole SO_REUSEPORT group: a shard whose socket is gone would
 * leave the peers the kernel hashes to it unanswered) still bound on the port the device listens on.
 */
export function wireGuardBound(fds: readonly number[], port: () => number): ReadinessCheck {
  return () => {
    const want = port();
    if (!(want > 0)) return 'the WireGuard socket is not bound';
    for (const fd of fds) {
      let at;
      try {
        at = socketAddress(fd);
      } catch (err) {
        return `the WireGuard socket (fd ${fd}) is gone: ${(err as Error).message}`;
      }
      if (at.port !== want) return `the WireGuard socket (fd ${fd}) is bound on port ${at.port}, not ${want}`;
    }
    return null;
  };
}
