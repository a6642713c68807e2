// A minimal HTTP endpoint for Prometheus: GET /metrics in the text
// exposition format, JSON errors for everything else. It serves one registry
// and does nothing between scrapes; an owner may add routes of its own (a
// server's /readyz, for probes that reach only the metrics port).
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { formatHostPort } from '@wirecage/wg-engine/config';
import { parseListenAddress, type ListenAddress } from './listen-address.js';

export const METRICS_PATH = '/metrics';

export class MetricsServer {
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    /** The address actually bound (the chosen port when asked for port 0). */
    readonly address: ListenAddress,
  ) {}

  /** Listens on "host:port", "[IPv6]:port" or ":port" (or a parsed ListenAddress) and serves registry at /metrics, and `routes` (path -> handler). */
  static async listen(
    addr: string | ListenAddress,
    registry: Registry,
    routes: Record<string, RequestListener> = {},
  ): Promise<MetricsServer> {
    const want = typeof addr === 'string' ? parseListenAddress(addr) : addr;
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (Object.hasOwn(routes, path)) return routes[path]!(req, res);
      handle(registry, req, res).catch((err: Error) => sendJson(res, 500, { error: `collecting metrics failed: ${err.message}` }));
    });
    // A scrape is one small request: do not let slow clients hold sockets.
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new Error(`cannot serve metrics on ${formatHostPort(want)}: ${explain(err)}`));
      server.once('error', onError);
      server.listen({ host: want.host, port: want.port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const bound = server.address() as AddressInfo;
    return new MetricsServer(server, { host: want.host === undefined ? undefined : bound.address, port: bound.port });
  }

  /** Where to scrape, e.g. http://127.0.0.1:9586/metrics (with every-address listeners, via loopback). */
  get url(): string {
    const host = this.address.host ?? '127.0.0.1';
    const shown = host.includes(':') ? `[${host}]` : host;
    return `http://${shown}:${this.address.port}${METRICS_PATH}`;
  }

  /** Stops listening and drops open connections (keep-alive scrapers included). Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}

async function handle(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== METRICS_PATH) {
    sendJson(res, 404, { error: `not found: metrics are at ${METRICS_PATH}` });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    sendJson(res, 405, { error: `method ${req.method} not allowed: use GET` });
    return;
  }
  const body = await registry.metrics();
  res.writeHead(200, {
    'Content-Type': registry.contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: { error: string }): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function explain(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the address is already in use (another exporter or cage?); pick another port';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges); pick a port from 1024 up';
    case 'EADDRNOTAVAIL':
      return 'no local interface has that address';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    default:
      return err.message;
  }
}
