// Puts a fleet node's forward listeners where fleet/forwards-here.ts says:
// opens those of the given peers whose session is here, closes those whose
// session went elsewhere or whose record is gone.
import type { Logger } from '@wirecage/wg-engine';
import type { ForwardManager } from '../forwards/index.js';
import type { PeerRecord, Registry } from '../registry/index.js';
import { servesForwardsOf } from './forwards-here.js';

export async function placeForwards(registry: Registry, manager: ForwardManager, peers: PeerRecord[], log: Logger): Promise<void> {
  const byKey = new Map(peers.map((p) => [p.publicKey, p]));
  // One peer (a handshake, a session moving): its own forwards only, not the fleet's every one.
  const listed = peers.length === 1 ? await registry.forwards.list(peers[0]!.publicKey) : await registry.forwards.list();
  const forwards = listed.filter((f) => byKey.has(f.peerPublicKey));
  const wanted = new Set<string>();
  for (const f of forwards) {
    const p = byKey.get(f.peerPublicKey)!;
    if (!servesForwardsOf(p, registry.node)) continue;
    wanted.add(`${f.protocol}/${f.publicPort}`);
    if (manager.isOpen(f.protocol, f.publicPort)) continue;
    try {
      await manager.open({ ...f, address4: p.address4, address6: p.address6 });
      log.info(`fleet: forward ${f.protocol}/${f.publicPort} of peer ${p.publicKey.slice(0, 8)}… listens here now`);
    } catch (err) {
      log.warn(`fleet: forward ${f.protocol}/${f.publicPort} cannot listen here: ${(err as Error).message}`);
    }
  }
  const considered = new Set(peers.map((p) => p.address4));
  for (const t of manager.targets()) {
    if (!considered.has(t.address4) || wanted.has(`${t.protocol}/${t.publicPort}`)) continue;
    await manager.close(t.protocol, t.publicPort);
    log.info(`fleet: forward ${t.protocol}/${t.publicPort} closed here: its peer's session is on another node, or it was removed`);
  }
}
