// A prom-client histogram whose values are read at scrape time from a
// HistogramTally kept by the code that measures, as scrapedCounter does for
// counters: prom-client's own Histogram can only be observed into, not set.
import type { Metric, Registry } from 'prom-client';
import type { HistogramTally } from './histogram-tally.js';
import type { Labels } from './registry.js';

export interface ScrapedHistogramOptions {
  name: string;
  help: string;
  /** The label each tally key is reported under (say `route`). */
  keyLabel: string;
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/** Registers a histogram read from tally at each scrape (prom-client's metric shape: name, help, type, get). */
export function registerScrapedHistogram(
  registry: Registry,
  o: ScrapedHistogramOptions,
  tally: HistogramTally,
  constant: Labels = {},
): void {
  const metric = {
    name: o.name,
    help: o.help,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    reset() {},
    get: () => {
      const values: Value[] = [];
      for (const e of tally.entries()) {
        const labels = { ...constant, [o.keyLabel]: e.key };
        tally.bounds.forEach((le, i) =>
          values.push({ metricName: `${o.name}_bucket`, labels: { ...labels, le }, value: e.cumulative[i]! }),
        );
        values.push({ metricName: `${o.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: e.count });
        values.push({ metricName: `${o.name}_sum`, labels, value: e.sum });
        values.push({ metricName: `${o.name}_count`, labels, value: e.count });
      }
      return { name: o.name, help: o.help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.registerMetric(metric as unknown as Metric);
}
