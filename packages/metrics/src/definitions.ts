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

const all: MetricDefinition[] = [];

// Each metric is declared once: this records it in METRIC_DEFINITIONS, and
// `const` keeps its literal name and labels in the exported type.
function metric<const D extends MetricDefinition>(def: D): D {
  all.push(def);
  return def;
}

export const PEER_RECEIVE_BYTES = metric({
  name: 'wireguard_peer_receive_bytes_total',
  type: 'counter',
  help: 'Bytes of WireGuard messages received from the peer (outer UDP payloads, handshakes included).',
  labels: ['public_key'],
});

export const PEER_TRANSMIT_BYTES = metric({
  name: 'wireguard_peer_transmit_bytes_total',
  type: 'counter',
  help: 'Bytes of WireGuard messages sent to the peer (outer UDP payloads, handshakes included).',
  labels: ['public_key'],
});

export const PEER_LAST_HANDSHAKE = metric({
  name: 'wireguard_peer_last_handshake_seconds',
  type: 'gauge',
  help: 'Unix time of the last completed handshake with the peer, in seconds; 0 when none has completed.',
  labels: ['public_key'],
});

export const PEER_INFO = metric({
  name: 'wireguard_peer_info',
  type: 'gauge',
  help: 'Always 1; the peer\'s current UDP endpoint (empty when unknown) as a label.',
  labels: ['public_key', 'endpoint'],
});

export const PEERS = metric({
  name: 'wireguard_peers',
  type: 'gauge',
  help: 'Peers configured on the interface.',
  labels: [],
});

export const DROPS = metric({
  name: 'wirecage_drops_total',
  type: 'counter',
  help: 'Packets the engine refused, by reason (see DROP_REASONS in @wirecage/wg-engine).',
  labels: ['reason'],
});

export const KEYPAIRS_IN_USE = metric({
  name: 'wirecage_keypairs_in_use',
  type: 'gauge',
  help: 'Session keypair slots in use (up to three per peer: previous, current, next).',
  labels: [],
});

export const UNDER_LOAD = metric({
  name: 'wirecage_under_load',
  type: 'gauge',
  help: '1 while the handshake queue is under load (cookies demanded, per-source rate limits applied), else 0.',
  labels: [],
});

export const SHARDS = metric({
  name: 'wirecage_shards',
  type: 'gauge',
  help: 'Data-plane shard workers (0: the data path runs on the main thread).',
  labels: [],
});

export const SHARD_PACKETS = metric({
  name: 'wirecage_shard_packets_total',
  type: 'counter',
  help: 'Ring slots a data-plane shard finished, by direction (egress: sealed for UDP; ingress: opened for the TUN), dropped ones included.',
  labels: ['shard', 'direction'],
});

export const SHARD_DROPS = metric({
  name: 'wirecage_shard_drops_total',
  type: 'counter',
  help: 'Packets a data-plane shard refused, by reason (also counted in wirecage_drops_total).',
  labels: ['shard', 'reason'],
});

export const SHARD_RESTARTS = metric({
  name: 'wirecage_shard_restarts_total',
  type: 'counter',
  help: 'Times a data-plane shard worker died and was started again.',
  labels: ['shard'],
});

export const SHARD_COALESCED = metric({
  name: 'wirecage_shard_coalesced_packets_total',
  type: 'counter',
  help: 'Ingress TCP segments a data-plane shard joined to the one before them, so that the TUN took them in one write (TCP coalescing on an offloading TUN).',
  labels: ['shard'],
});

export const RING_PACKETS = metric({
  name: 'wirecage_ring_packets_total',
  type: 'counter',
  help: 'Packets through a data-plane ring (egress: TUN to UDP; ingress: UDP to TUN) by outcome: produced, emitted, dropped (by a shard), full (no free slot: dropped at the reader, like a NIC queue), emit_error. 32-bit: wraps like a reset.',
  labels: ['ring', 'outcome'],
});

/** Every metric above, in the order they are declared (and scraped). */
export const METRIC_DEFINITIONS: readonly MetricDefinition[] = all;

/** The label every series carries: which engine (device) it describes. */
export const INTERFACE_LABEL = 'interface';
