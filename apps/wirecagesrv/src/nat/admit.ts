// The two checks every relayed flow passes before anything is opened for it,
// in this order: the egress policy (where it may go), then the flow limits
// (how many it may have). One rule for TCP, UDP and ping, counted per protocol.
import type { RelayContext } from './tcp-relay.js';

export type RelayedProtocol = 'tcp' | 'udp' | 'icmp';

/**
 * True when the flow named `flow` (for the log) from `source` to `dest` may open; it then holds a
 * limit slot, which the caller releases when the flow ends or fails to open.
 */
export function admitFlow(ctx: RelayContext, proto: RelayedProtocol, flow: string, source: string, dest: string): boolean {
  // A refused TCP connection is reset; UDP and ping are dropped.
  const verb = proto === 'tcp' ? 'refused' : 'dropped';
  const refused = ctx.policy.check(dest);
  if (refused !== null) {
    ctx.counters[`${proto}RefusedByPolicy`]++;
    ctx.log.debug(`NAT ${proto} ${flow}: ${verb} (${refused})`);
    return false;
  }
  const limit = ctx.limits.acquire(source);
  if (limit !== null) {
    ctx.counters[`${proto}RefusedByLimit`]++;
    ctx.log.warn(`NAT ${proto} ${flow}: ${verb}, the ${limit === 'peer' ? 'per-peer' : 'global'} flow limit is reached`);
    return false;
  }
  return true;
}
