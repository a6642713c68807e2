export { FleetSync, RECONCILE_MS, type FleetSyncOptions } from './sync.js';
export { startHeartbeat, HEARTBEAT_MS, LIVE_WITHIN_MS, type NodeInfo } from './heartbeat.js';
export { servesForwardsHere, servesForwardsOf } from './forwards-here.js';
export { fleetNodes } from './nodes.js';
