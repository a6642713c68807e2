// @wirecage/metrics: Prometheus metrics for wirecage engines, read from the
// engine's own counters at scrape time, and a small /metrics server.
export * from './definitions.js';
export {
  engineMetrics,
  DEFAULT_DEVICE,
  type EngineMetrics,
  type EngineMetricsOptions,
  type EngineSource,
  type CidrSource,
  type PeerSource,
  type PlaneSource,
  type Labels,
  scrapedCounter,
  scrapedGauge,
  type ScrapedMetricOptions,
  type Fill,
} from './registry.js';
export { parseListenAddress, type ListenAddress } from './listen-address.js';
export { MetricsServer, METRICS_PATH } from './server.js';
export { HistogramTally } from './histogram-tally.js';
export { registerScrapedHistogram, type ScrapedHistogramOptions } from './scraped-histogram.js';
export { processMetrics } from './process-metrics.js';
export { Registry } from 'prom-client';
