// The metrics an engine exposes: names, types, help and labels in one table,
// so the README, the registry and the tests agree. The wireguard_* names
// follow the common WireGuard exporters (mdlayher/wireguard_exporter), so
// existing dashboards and alerts work; what only this engine knows is under
// wirecage_*.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Labels besides `device` (and the caller's extra constant labels) for engine metrics; all labels for server ones. */
  readonly labels: readonly string[];
}

const all: MetricDefinition[] = [];
const server: MetricDefinition[] = [];

// Each metric is declared once: this records it in METRIC_DEFINITIONS, and
// `const` keeps its literal name and labels in the exported type.
function metric<const D extends MetricDefinition>(def: D): D {
  all.push(def);
  return def;
}

/** A wirecagesrv metric: declared here too, so that every name the project exports is in one file. */
function serverMetric<const D extends MetricDefinition>(def: D): D {
  server.push(def);
  return def;
}

// The exporter's own help texts, so that a dashboard's tooltips read the same.
export const DEVICE_INFO = metric({
  name: 'wireguard_device_info',
  type: 'gauge',
  help: 'Metadata about a device.',
  // The device's own public key (every other public_key label names a peer's).
  labels: ['public_key'],
});

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
  help: "Metadata about a peer. The public_key label on peer metrics refers to the peer's public key; not the device's public key.",
  // name: the exporter's friendly peer name; always empty here (peers have no names), kept so its queries match.
  labels: ['public_key', 'endpoint', 'name'],
});

export const PEER_ALLOWED_IPS_INFO = metric({
  name: 'wireguard_peer_allowed_ips_info',
  type: 'gauge',
  help: "Metadata about each of a peer's allowed IP subnets for a given device.",
  // family: "IPv4" or "IPv6", spelt as the exporter does.
  labels: ['public_key', 'allowed_ips', 'family'],
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

/** Every engine metric above, in the order they are declared (and scraped). */
export const METRIC_DEFINITIONS: readonly MetricDefinition[] = all;

/**
 * The label every engine series carries: which engine it describes. `device`,
 * as mdlayher/wireguard_exporter names it, so that its dashboards and alerts
 * find these series.
 */
export const DEVICE_LABEL = 'device';

// wirecagesrv's own series (apps/wirecagesrv/src/metrics.ts registers them).

export const SRV_PEERS_REGISTERED = serverMetric({
  name: 'wirecagesrv_peers_registered',
  type: 'gauge',
  help: 'Peers in the registry.',
  labels: [],
});

export const SRV_PEERS_MAX = serverMetric({
  name: 'wirecagesrv_peers_max',
  type: 'gauge',
  help: "Most peers the registry takes (--max-peers, capped by the address pool): registered / max is the pool's use.",
  labels: [],
});

export const SRV_PEERS_EXPIRING = serverMetric({
  name: 'wirecagesrv_peers_expiring',
  type: 'gauge',
  help: 'Registered peers whose lease ends within the window (seconds) unless a handshake or a registration renews it.',
  labels: ['within'],
});

export const SRV_FORWARDS_LISTENING = serverMetric({
  name: 'wirecagesrv_forwards_listening',
  type: 'gauge',
  help: 'Port forwards whose public port is listening.',
  labels: [],
});

export const SRV_API_REQUESTS = serverMetric({
  name: 'wirecagesrv_api_requests_total',
  type: 'counter',
  help: 'API requests answered, by route (the route\'s template; "other" for paths no route serves) and HTTP status.',
  labels: ['route', 'status'],
});

export const SRV_API_REQUEST_DURATION = serverMetric({
  name: 'wirecagesrv_api_request_duration_seconds',
  type: 'histogram',
  help: "Time from a request's arrival to the end of its answer, by route (as in wirecagesrv_api_requests_total).",
  labels: ['route'],
});

/** Upper bounds (seconds) of wirecagesrv_api_request_duration_seconds: registrations take a SQLite write, most answers a few ms. */
export const API_DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const SRV_NAT_ACTIVE_FLOWS = serverMetric({
  name: 'wirecagesrv_nat_active_flows',
  type: 'gauge',
  help: 'TCP connections, UDP flows and ping flows open through the NAT now.',
  labels: ['mode'],
});

export const SRV_NAT_FLOWS = serverMetric({
  name: 'wirecagesrv_nat_flows_total',
  type: 'counter',
  help: 'Flows the NAT relayed, by protocol.',
  labels: ['protocol'],
});

export const SRV_NAT_REFUSED = serverMetric({
  name: 'wirecagesrv_nat_refused_total',
  type: 'counter',
  help: 'Flows refused, by protocol and by what refused them (the egress policy, or the flow limits).',
  labels: ['protocol', 'by'],
});

export const SRV_NAT_DROPPED = serverMetric({
  name: 'wirecagesrv_nat_dropped_total',
  type: 'counter',
  help: 'What the NAT dropped or failed: TCP connects that failed (the client got a reset), UDP datagrams, ping messages.',
  labels: ['what'],
});

export const SRV_NAT_ICMP_ERRORS = serverMetric({
  name: 'wirecagesrv_nat_icmp_errors_total',
  type: 'counter',
  help: "ICMP errors (unreachable, time exceeded, packet too big) about peers' UDP datagrams and pings: passed on to the peer, or not (over the rate limit).",
  labels: ['outcome'],
});

export const SRV_NODE_INFO = serverMetric({
  name: 'wirecagesrv_node_info',
  type: 'gauge',
  help: "Always 1: this server's name among the nodes sharing its registry (--node-name), to tell a fleet's scrapes apart and join them.",
  labels: ['node'],
});

export const SRV_FLEET_NODES = serverMetric({
  name: 'wirecagesrv_fleet_nodes',
  type: 'gauge',
  help: 'Nodes sharing the registry whose heartbeat is recent (within 15 s), this one included; 1 for a registry of its own (SQLite).',
  labels: [],
});

export const SRV_FLEET_SESSIONS = serverMetric({
  name: 'wirecagesrv_fleet_sessions',
  type: 'gauge',
  help: "Peers whose last handshake was with each live node of the fleet: where the fleet's traffic goes.",
  labels: ['node'],
});

/** wirecagesrv's own metrics (besides the engine's and the process_* / nodejs_* defaults). */
export const SERVER_METRIC_DEFINITIONS: readonly MetricDefinition[] = server;
