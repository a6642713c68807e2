// Which node listens on a forward's public port. One server: that one. In a
// fleet: the node holding the peer's session (its last handshake was with
// it), since only that node can reach the peer; while the peer has no
// session yet, every node does (whichever the peer shakes hands with first
// then serves it at once).
import type { PeerRecord, Registry } from '../registry/index.js';

export function servesForwardsOf(peer: PeerRecord, node: string): boolean {
  return peer.sessionNode === null || peer.sessionNode === node;
}

export function servesForwardsHere(registry: Registry, peer: PeerRecord): boolean {
  return registry.fleet === null || servesForwardsOf(peer, registry.node);
}
