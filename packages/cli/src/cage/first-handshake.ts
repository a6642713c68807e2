// The first handshake of a run, with failover. A peer whose endpoint does not
// answer within Rekey-Timeout moves on to its next candidate (every address
// of every endpoint it may use: heal-candidates.ts), as a healing tunnel does
// later on (heal-resolve.ts): a fleet node that is down when the cage starts
// costs one Rekey-Timeout, not the run. A peer with one candidate waits for
// it, as before.
import { REKEY_TIMEOUT, type Device, type Logger, type Peer } from '@wirecage/wg-engine';
import { moveToNext } from './heal-resolve.js';

export interface FirstHandshakePeer {
  peer: Peer;
  /** The endpoints it may use ("name:port", several for a fleet); looked up again at each move. */
  endpoints(): string[];
}

/**
 * Resolves at the first completed handshake of any peer; rejects with `timeout(where)` after
 * `seconds`. Every Rekey-Timeout without one, each peer that has another candidate moves to it.
 */
export function waitForFirstHandshake(
  device: Device,
  peers: FirstHandshakePeer[],
  seconds: number,
  o: { log: Logger; timeout: (where: string) => Error },
): Promise<void> {
  const tried = new Map(peers.map((p) => [p, new Set<string>()]));
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const finish = (err?: Error) => {
      clearTimeout(deadline);
      clearInterval(moving);
      device.off('handshake-complete', done);
      if (err) reject(err);
      else resolve();
    };
    const done = () => finish();
    const deadline = setTimeout(() => finish(o.timeout(peers.map((p) => p.endpoints().join(' or ')).join(', '))), seconds * 1000);
    const moveOn = async (p: FirstHandshakePeer) => {
      const failedForS = Math.round((Date.now() - started) / 1000);
      const { moved } = await moveToNext(p.peer, p.endpoints(), failedForS, o.log, { tried: tried.get(p)! });
      if (moved) device.initiateHandshake(p.peer, { force: true });
    };
    const moving = setInterval(() => {
      for (const p of peers) void moveOn(p).catch((err: unknown) => o.log.debug(`peer ${p.peer.name}: ${(err as Error).message}`));
    }, REKEY_TIMEOUT * 1000);
    device.on('handshake-complete', done);
    for (const p of peers) device.initiateHandshake(p.peer);
  });
}
