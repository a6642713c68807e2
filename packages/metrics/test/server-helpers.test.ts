import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { API_DURATION_BUCKETS, HistogramTally, SERVER_METRIC_DEFINITIONS, processMetrics, registerScrapedHistogram } from '../src/index.js';
import { parseExposition, select, value } from './fixtures/exposition.js';

// What wirecagesrv builds its own series from: a latency tally kept without
// prom-client and reported as a Prometheus histogram, and the process defaults.

describe('registerScrapedHistogram', () => {
  it('reports a tally as cumulative le buckets, +Inf, sum and count per key, read at each scrape', async () => {
    const tally = new HistogramTally([0.01, 0.1, 1]);
    const registry = new Registry();
    registerScrapedHistogram(registry, { name: 't_seconds', help: 'test', keyLabel: 'route' }, tally, { node: 'n' });
    for (const v of [0.005, 0.05, 0.05, 0.5, 7]) tally.observe('/a', v);
    tally.observe('/b', 0.01);
    const e = parseExposition(await registry.metrics());
    assert.equal(e.types.get('t_seconds'), 'histogram');
    const a = select(e, 't_seconds_bucket', { route: '/a', node: 'n' }).map((s) => [s.labels.le, s.value]);
    assert.deepEqual(a, [
      ['0.01', 1],
      ['0.1', 3],
      ['1', 4],
      ['+Inf', 5],
    ]);
    assert.equal(value(e, 't_seconds_count', { route: '/a' }), 5);
    assert.ok(Math.abs(value(e, 't_seconds_sum', { route: '/a' }) - 7.605) < 1e-9);
    assert.equal(value(e, 't_seconds_bucket', { route: '/b', le: '0.01' }), 1, 'a bound is inclusive, as Prometheus le');

    tally.observe('/b', 2);
    const again = parseExposition(await registry.metrics());
    assert.equal(value(again, 't_seconds_count', { route: '/b' }), 2);
  });

  it('refuses bounds that do not ascend', () => {
    assert.throws(() => new HistogramTally([1, 1]), /must ascend/);
    assert.ok(API_DURATION_BUCKETS.every((b, i) => i === 0 || b > API_DURATION_BUCKETS[i - 1]!));
  });
});

describe('processMetrics', () => {
  it('adds process_* and nodejs_* once per registry, fds included', async () => {
    const registry = new Registry();
    processMetrics(registry);
    processMetrics(registry);
    const e = parseExposition(await registry.metrics());
    assert.ok(value(e, 'process_open_fds', {}) > 0);
    assert.ok(value(e, 'process_max_fds', {}) >= value(e, 'process_open_fds', {}));
    assert.ok([...e.types.keys()].some((n) => n.startsWith('nodejs_')));
  });
});

describe('SERVER_METRIC_DEFINITIONS', () => {
  it("names wirecagesrv's series once, each under wirecagesrv_", () => {
    const names = SERVER_METRIC_DEFINITIONS.map((d) => d.name);
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.every((n) => n.startsWith('wirecagesrv_')));
    assert.ok(names.includes('wirecagesrv_api_requests_total') && names.includes('wirecagesrv_peers_expiring'));
  });
});
