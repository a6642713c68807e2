// Stage 2's healing of a cage: heal.ts on the cage's device, its state kept
// in the health file for `show` and `ps` (health-file.ts), and, for a run
// with a server name, the registration re-checked when handshakes fail
// (servers/lease-recheck.ts, loaded only when it is first needed), and the
// server's peer failing over along the endpoints of its stored answer
// (servers/server-endpoints.ts: a fleet's server_endpoints).
import type { Device, Logger } from '@wirecage/wg-engine';
import type { CageSpec } from './spec.js';
import { startHealing, type Healing, type HealPeer } from './heal.js';
import { healthFile, removeHealth, writeHealth } from './health-file.js';
import { peerEndpoints } from '../servers/server-endpoints.js';

export function startCageHealing(spec: CageSpec, device: Device, peers: HealPeer[], log: Logger, tunName: string): Healing {
  const file = healthFile(spec.runtimeDir, tunName, process.pid);
  const server = spec.recheck;
  const recheck = server ? async () => (await import('../servers/lease-recheck.js')).recheckLease(server, spec, peers, log) : undefined;
  // A run of a server has its one peer; the stored answer is read at each move, so a renewed one counts.
  if (server && peers.length === 1) {
    const { leaseFile } = server;
    const own = peers[0]!.endpoint;
    peers[0]!.endpoints = () => peerEndpoints(leaseFile, own);
  }
  let failed = false;
  const healing = startHealing(device, peers, {
    log,
    reresolveAfterSeconds: spec.reresolveAfterSeconds,
    recheck,
    onChange: (health) => {
      try {
        writeHealth(file, health);
        failed = false;
      } catch (err) {
        // Once per run of failures: the tunnel heals all the same, only `show` cannot tell.
        if (!failed) log.warn(`cannot write the tunnel's state to ${file}: ${(err as Error).message}`);
        failed = true;
      }
    },
  });
  return {
    health: () => healing.health(),
    stop() {
      healing.stop();
      removeHealth(file);
    },
  };
}
