// prom-client's default metrics (process_open_fds, process_max_fds, CPU,
// memory, nodejs_eventloop_lag_*, GC, ...): a NAT flow holds two fds, so fds
// near the limit is a server's first capacity problem.
import { collectDefaultMetrics, type Registry } from 'prom-client';

const done = new WeakSet<Registry>();

/** Adds the process_* and nodejs_* series to registry, once (a second call is a no-op). */
export function processMetrics(registry: Registry): void {
  if (done.has(registry)) return;
  done.add(registry);
  collectDefaultMetrics({ register: registry });
}
