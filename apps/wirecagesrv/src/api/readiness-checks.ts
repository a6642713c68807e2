// The facts /readyz rests on, each checked for real: a committed write to the
// registry (its file, or the fleet's database), the WireGuard sockets still bound on their port (the NAT
// answers for itself: ReadyNat.ready()).
import { socketAddress } from '@wirecage/netns';
import type { Registry } from '../registry/index.js';
import type { ReadinessCheck } from './readyz.js';

/** A committed write to the registry (each store says how: registry.checkWritable). */
export function registryWritable(registry: Registry): ReadinessCheck {
  return async () => {
    try {
      await registry.checkWritable();
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  };
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
