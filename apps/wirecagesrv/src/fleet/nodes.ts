import type { NodeRecord, Registry } from '../registry/index.js';
import type { NodeInfo } from './heartbeat.js';

/**
 * The nodes sharing the registry, as their heartbeats say (those heard from within `withinMs`, or
 * all on record); a server with a registry of its own is its one node, heard from now.
 */
export async function fleetNodes(registry: Registry, self: NodeInfo, withinMs?: number): Promise<NodeRecord[]> {
  if (registry.fleet) return registry.fleet.nodes(withinMs);
  const sessions = (await registry.list()).filter((p) => p.sessionNode === registry.node).length;
  return [{ name: registry.node, endpoint: self.endpoint, api: self.api, startedAt: self.startedAt, heartbeat: new Date(), sessions }];
}
