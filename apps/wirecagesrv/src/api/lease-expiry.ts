// Leases run out on the server's own clock: at start and then every quarter
// lease (between 1 s and a minute), each peer whose lease ended is removed by
// the same path as DELETE /v1/register (remove-peer.ts), unless it registered
// again since the check looked.
import { silentLogger, type Logger } from '@wirecage/wg-engine';
import { expiryCheckInterval } from '../registry/index.js';
import { removePeer, type PeerRemoval } from './remove-peer.js';

export interface LeaseExpiryOptions extends PeerRemoval {
  /** Default: a quarter of the registry's lease, between 1 s and 60 s. */
  intervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface LeaseExpiry {
  /** Removes every expired peer now; the number removed. */
  sweep(): Promise<number>;
  /** Stops the timer; resolves once a sweep under way has finished. */
  stop(): Promise<void>;
}

export function startLeaseExpiry(opts: LeaseExpiryOptions): LeaseExpiry {
  const { registry } = opts;
  const log = opts.logger ?? silentLogger;
  const now = opts.now ?? Date.now;
  let running: Promise<number> | null = null;

  const sweepOnce = async (): Promise<number> => {
    let removed = 0;
    const at = now();
    for (const peer of await registry.expired(at)) {
      const forwards = await removePeer(opts, peer, (key) => registry.removeExpired(key, at));
      if (!forwards) continue;
      removed++;
      log.info(
        `removed peer ${peer.publicKey.slice(0, 8)}… (${peer.address4}, ${peer.address6}, ${forwards.length} forward(s)): its lease ended ${peer.leaseExpires.toISOString()}`,
      );
    }
    return removed;
  };
  // One sweep at a time: a slow removal (cutting NAT flows) must not start a second pass over the same peers.
  const sweep = (): Promise<number> => (running ??= sweepOnce().finally(() => (running = null)));
  const tick = () => void sweep().catch((err: unknown) => log.warn(`could not remove expired peers: ${(err as Error).message}`));

  tick();
  const timer = setInterval(tick, opts.intervalMs ?? expiryCheckInterval(registry.leaseMs));
  timer.unref();
  return {
    sweep,
    stop: async () => {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
