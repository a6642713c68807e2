// API requests counted by route and status, with their latency, for
// wirecagesrv_api_requests_total and wirecagesrv_api_request_duration_seconds.
// Counted here in plain maps (prom-client is loaded only with --metrics-listen)
// and read at scrape time. The route label is the route's template, never the
// raw path: a scanner trying a million paths adds one series ("other"), not a million.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_DURATION_BUCKETS } from '@wirecage/metrics/definitions';
import { HistogramTally } from '@wirecage/metrics/histogram-tally';

/** The route label of a path no route serves. */
export const OTHER_ROUTE = 'other';
/** The status label of a request whose connection closed before its answer was sent. */
export const ABORTED = 'aborted';

export class RequestStats {
  private readonly counts = new Map<string, { route: string; status: string; n: number }>();
  readonly durations = new HistogramTally(API_DURATION_BUCKETS);

  record(route: string, status: string, seconds: number): void {
    const key = `${route} ${status}`;
    const c = this.counts.get(key);
    if (c) c.n += 1;
    else this.counts.set(key, { route, status, n: 1 });
    this.durations.observe(route, seconds);
  }

  *entries(): Generator<{ route: string; status: string; count: number }> {
    for (const c of this.counts.values()) yield { route: c.route, status: c.status, count: c.n };
  }
}

/** The process's own, for a server built without one of its own (one server per process in stage 2). */
export const apiRequestStats = new RequestStats();

/** Counts each request under routeOf(path) once its answer is finished or its connection gone. */
export function countRequests(
  stats: RequestStats,
  routeOf: (path: string) => string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const start = process.hrtime.bigint();
    const route = routeOf(pathOf(req.url));
    res.once('close', () => {
      const status = res.writableFinished ? String(res.statusCode) : ABORTED;
      stats.record(route, status, Number(process.hrtime.bigint() - start) / 1e9);
    });
    handler(req, res);
  };
}

function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://api.invalid').pathname;
  } catch {
    return '';
  }
}
