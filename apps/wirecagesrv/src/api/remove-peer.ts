// Removing a peer, one way for every reason (its own DELETE /v1/register, the
// admin's, or an expired lease): the registry row goes with its forwards (the
// schema cascades), then onRemoved takes it off the WireGuard device and cuts
// its NAT flows, then its forwards' listeners close with every connection
// through them. Its addresses go back to the pool.
import type { ForwardManager } from '../forwards/index.js';
import type { ForwardRecord, PeerRecord, Registry } from '../registry/index.js';

export interface PeerRemoval {
  registry: Registry;
  manager: ForwardManager;
  /** Called once the peer is out of the registry: takes it off the device, cuts its flows. */
  onRemoved?: (peer: PeerRecord) => void | Promise<void>;
}

/**
 * Removes `peer` if `forget` (the registry delete, e.g. `registry.remove`) still finds it;
 * returns the forwards it had, or null when it was gone (or renewed) meanwhile.
 */
export async function removePeer(
  r: PeerRemoval,
  peer: PeerRecord,
  forget: (publicKey: string) => boolean,
): Promise<ForwardRecord[] | null> {
  // Read and removed with no await between them: no forward of this process can be added in between,
  // and one being set up by a concurrent request fails to record (its peer is gone) and closes itself.
  const forwards = r.registry.forwards.list(peer.publicKey);
  if (!forget(peer.publicKey)) return null;
  await r.onRemoved?.(peer);
  for (const f of forwards) await r.manager.close(f.protocol, f.publicPort);
  return forwards;
}
