// At start, every recorded forward is listened on again. A port that cannot
// be bound any more (another program took it while the server was down) is
// logged and its record kept: the listing shows it inactive, and the owner
// can remove it or create it again once the port is free. A forward recorded
// outside --forward-ports (made before the range existed, or narrowed since)
// is not listened on either: the range is the operator's word on which ports
// clients may hold.
import type { Logger } from '@wirecage/wg-engine';
import { formatPortRange, inPortRange } from './ports.js';
import { servesForwardsHere } from '../fleet/forwards-here.js';
import type { Registry } from '../registry/index.js';
import type { ForwardManager } from './manager.js';

export async function restoreForwards(registry: Registry, manager: ForwardManager, log: Logger): Promise<{ open: number; failed: number }> {
  let open = 0;
  let failed = 0;
  for (const f of await registry.forwards.list()) {
    const peer = await registry.get(f.peerPublicKey);
    // In a fleet, the node holding the peer's session listens (fleet/forwards-here.ts).
    if (!peer || !servesForwardsHere(registry, peer)) continue;
    if (manager.ports && !inPortRange(manager.ports, f.publicPort)) {
      failed++;
      log.warn(
        `forward ${f.protocol}/${f.publicPort} of peer ${f.peerPublicKey.slice(0, 8)}… is not active: the port is outside --forward-ports ${formatPortRange(manager.ports)}`,
      );
      continue;
    }
    try {
      await manager.open({
        protocol: f.protocol,
        publicPort: f.publicPort,
        targetPort: f.targetPort,
        address4: peer.address4,
        address6: peer.address6,
      });
      open++;
    } catch (err) {
      failed++;
      log.warn(`forward ${f.protocol}/${f.publicPort} of peer ${f.peerPublicKey.slice(0, 8)}… is not active: ${(err as Error).message}`);
    }
  }
  return { open, failed };
}
