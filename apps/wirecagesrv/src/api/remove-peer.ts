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
  forget: (publicKey: string) => Promise<boolean>,
): Promise<ForwardRecord[] | null> {
  const forwards = await r.registry.forwards.list(peer.publicKey);
  if (!(await forget(peer.publicKey))) return null;
  await r.onRemoved?.(peer);
  // Every listener relaying to its addresses, not only those listed: one added meanwhile (its
  // record went with the peer, cascaded) closes too. A forward being set up now fails to record.
  await r.manager.closeTo(peer.address4);
  return forwards;
}
