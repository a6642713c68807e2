// @wirecage/metrics: Prometheus metrics for wirecage engines, read from the
// engine's own counters at scrape time, and a small /metrics server.
export {
  METRIC_DEFINITIONS,
  INTERFACE_LABEL,
  PEER_RECEIVE_BYTES,
  PEER_TRANSMIT_BYTES,
  PEER_LAST_HANDSHAKE,
  PEER_INFO,
  PEERS,
  DROPS,
  KEYPAIRS_IN_USE,
  UNDER_LOAD,
  SHARDS,
  SHARD_PACKETS,
  SHARD_DROPS,
  SHARD_RESTARTS,
  SHARD_COALESCED,
  RING_PACKETS,
  type MetricDefinition,
  type MetricType,
} from './definitions.js';
export {
  engineMetrics,
  DEFAULT_INTERFACE,
  type EngineMetrics,
  type EngineMetricsOptions,
  type EngineSource,
  type PeerSource,
  type PlaneSource,
  type Labels,
  scrapedCounter,
  scrapedGauge,
  type ScrapedMetricOptions,
  type Fill,
} from './registry.js';
export { parseListenAddress, formatListenAddress, ListenAddressError, type ListenAddress } from './listen-address.js';
export { MetricsServer, METRICS_PATH } from './server.js';
export { Registry } from 'prom-client';
