// The metrics an engine exposes: names, types, help and labels in one table,
// so the README, the registry and the tests agree. The wireguard_* names
// follow the common WireGuard exporters (mdlayher/wireguard_exporter), so
// existing dashboards and alerts work; what only this engine knows is under
// wirecage_*.

export type MetricType = 'counter' | 'gauge';

export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Labels besides `interface` (and the caller's extra constant labels). */
  readonly labels: readonly string[];
}

export const PEER_RECEIVE_BYTES = {
  name: 'wireguard_peer_receive_bytes_total',
  type: 'counter',
  help: 'Bytes of WireGuard messages received from the peer (outer UDP payloads, handshakes included).',
  labels: ['public_key'],
} as const satisfies MetricDefinition;

export const PEER_TRANSMIT_BYTES = {
  name: 'wireguard_peer_transmit_bytes_total',
  type: 'counter',
  help: 'Bytes of WireGuard messages sent to the peer (outer UDP payloads, handshakes included).',
  labels: ['public_key'],
} as const satisfies MetricDefinition;

export const PEER_LAST_HANDSHAKE = {
  name: 'wireguard_peer_last_handshake_seconds',
  type: 'gauge',
  help: 'Unix time of the last completed handshake with the peer, in seconds; 0 when none has completed.',
  labels: ['public_key'],
} as const satisfies MetricDefinition;

export const PEER_INFO = {
  name: 'wireguard_peer_info',
  type: 'gauge',
  help: 'Always 1; the peer\'s current UDP endpoint (empty when unknown) as a label.',
  labels: ['public_key', 'endpoint'],
} as const satisfies MetricDefinition;

export const PEERS = {
  name: 'wireguard_peers',
  type: 'gauge',
  help: 'Peers configured on the interface.',
  labels: [],
} as const satisfies MetricDefinition;

export const DROPS = {
  name: 'wirecage_drops_total',
  type: 'counter',
  help: 'Packets the engine refused, by reason (see DROP_REASONS in @wirecage/wg-engine).',
  labels: ['reason'],
} as const satisfies MetricDefinition;

export const KEYPAIRS_IN_USE = {
  name: 'wirecage_keypairs_in_use',
  type: 'gauge',
  help: 'Session keypair slots in use (up to three per peer: previous, current, next).',
  labels: [],
} as const satisfies MetricDefinition;

export const UNDER_LOAD = {
  name: 'wirecage_under_load',
  type: 'gauge',
  help: '1 while the handshake queue is under load (cookies demanded, per-source rate limits applied), else 0.',
  labels: [],
} as const satisfies MetricDefinition;

export const METRIC_DEFINITIONS: readonly MetricDefinition[] = [
  PEER_RECEIVE_BYTES,
  PEER_TRANSMIT_BYTES,
  PEER_LAST_HANDSHAKE,
  PEER_INFO,
  PEERS,
  DROPS,
  KEYPAIRS_IN_USE,
  UNDER_LOAD,
];

/** The label every series carries: which engine (device) it describes. */
export const INTERFACE_LABEL = 'interface';
