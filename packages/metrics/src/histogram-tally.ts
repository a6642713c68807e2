// Latencies counted where they happen, without prom-client (whose import costs
// start-up time a server without --metrics-listen should not pay): per label
// value, how many observations fell at or under each bound, their sum and
// count. scrapedHistogram (scraped-histogram.ts) reports them.

export class HistogramTally {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();

  /** bounds: ascending upper bounds in the observed unit; +Inf is implied. */
  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`histogram bounds must ascend: ${bounds.join(', ')}`);
    }
  }

  observe(key: string, value: number): void {
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { buckets: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 }));
    // Not cumulative here: one increment per observation; the report sums them.
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) s.buckets[i]! += 1;
    s.sum += value;
    s.count += 1;
  }

  /** Each key's cumulative counts per bound (as Prometheus's `le` buckets), sum and count. */
  *entries(): Generator<{ key: string; cumulative: number[]; sum: number; count: number }> {
    for (const [key, s] of this.series) {
      let run = 0;
      yield { key, cumulative: s.buckets.map((n) => (run += n)), sum: s.sum, count: s.count };
    }
  }
}
