// The API's listening socket: plain HTTP, or HTTPS with a certificate and key
// read from files. Slow or idle clients are cut off by timeouts, and what
// node:http answers by itself is answered as JSON (protocol-errors.ts). A
// reload swaps the handler and the certificate under the same socket; close
// drains: no new connection, the requests in flight answered (bounded).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { formatListen, type ListenAddress } from '../listen.js';
import { answerProtocolErrors, requireHost } from './protocol-errors.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** Where the API serves, as a URL: "https://0.0.0.0:8443", "http://unix:/run/api.sock". */
export function apiUrl(api: Pick<ApiServer, 'address' | 'tls'>): string {
  const scheme = api.tls ? 'https' : 'http';
  const at = api.address;
  return `${scheme}://${typeof at === 'string' ? `unix:${at}` : formatListen({ host: at.address, port: at.port })}`;
}

export interface ApiServer {
  server: http.Server;
  /** The bound TCP address, or the socket path. */
  address: AddressInfo | string;
  tls: boolean;
  /** Requests from now on go to `handler`; those under way finish with the one they started with. */
  setHandler(handler: http.RequestListener): void;
  /** Reads the files again and serves them to new TLS handshakes; throws (serving the old ones) when they cannot be used. */
  reloadTls(tls: TlsFiles): void;
  /** Stops accepting, lets the requests in flight finish for up to `drainMs` (default 0), then cuts every connection. */
  close(drainMs?: number): Promise<void>;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped form: reachable from this host only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^::ffff:(?=\d+\.)/i, '');
  return /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1' || h === '0:0:0:0:0:0:0:1';
}

/**
 * Why `up` must not serve plain HTTP on `at`, or null when it may: the
 * registration token (and the admin's) would cross the network in clear, and
 * the answer that tells a client which server key to trust could be swapped
 * on the way. Loopback stays plain (a reverse proxy on the same host
 * terminates TLS); anything else needs --tls-cert/--tls-key or, knowingly,
 * --insecure-http.
 */
export function plainHttpRefusal(at: ListenAddress, tls: boolean, insecureHttp: boolean): string | null {
  if (tls || insecureHttp || isLoopback(at.host)) return null;
  return (
    `--api-listen ${formatListen(at)} is not a loopback address: serve it over HTTPS (--tls-cert FILE --tls-key FILE), ` +
    'or pass --insecure-http to accept that registration tokens travel in clear (e.g. behind a TLS-terminating proxy on a private network)'
  );
}

// node:http looks for requests over their time every connectionsCheckingInterval (30 s by
// default, so a stalled request lived up to 45 s); once a second keeps the bounds near what they say.
const TIMEOUTS = { requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 };
/** requireHost answers a missing Host as JSON instead. */
const OPTIONS = { ...TIMEOUTS, requireHostHeader: false };

/** A TCP address, a Unix socket path (for a reverse proxy on the same host, and for tests), or a bound listening fd. */
export type ApiListen = ListenAddress | { path: string } | { fd: number };

export async function listenApi(apiHandler: http.RequestListener, at: ApiListen, tls?: TlsFiles): Promise<ApiServer> {
  let current = apiHandler;
  const inFlight = new InFlight();
  const handler = requireHost((req, res) => {
    inFlight.add(res);
    current(req, res);
  });
  let server: http.Server;
  if (tls) {
    const files = tlsFiles(tls);
    try {
      server = https.createServer({ ...files, ...OPTIONS }, handler);
    } catch (err) {
      throw new Error(`the TLS certificate ${tls.certFile} and key ${tls.keyFile} cannot be used: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } else {
    server = http.createServer(OPTIONS, handler);
  }
  answerProtocolErrors(server);
  await new Promise<void>((resolve, reject) => {
    const where = 'path' in at ? at.path : 'fd' in at ? `fd ${at.fd}` : `${at.host} port ${at.port}`;
    server.once('error', (err) => reject(new Error(`the API cannot listen on ${where}: ${err.message}`)));
    server.listen(
      'path' in at ? { path: at.path, exclusive: true } : 'fd' in at ? { fd: at.fd } : { host: at.host, port: at.port, exclusive: true },
      resolve,
    );
  });
  let closing: Promise<void> | undefined;
  return {
    server,
    address: server.address() as AddressInfo | string,
    tls: tls !== undefined,
    setHandler: (h) => (current = h),
    reloadTls(files) {
      if (!(server instanceof https.Server))
        throw new Error('the API serves plain HTTP: a certificate is taken at start only (--tls-cert needs a restart)');
      server.setSecureContext(usableTls(files));
    },
    close: (drainMs = 0) => (closing ??= inFlight.drain(server, drainMs)),
  };
}

/** The certificate and key files read, each failure naming its file and flag. */
function tlsFiles(tls: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { cert: read(tls.certFile, 'certificate (--tls-cert)'), key: read(tls.keyFile, 'key (--tls-key)') };
}

/** The files read and tried as OpenSSL would serve them (a certificate that does not parse, a key of another certificate): before any handshake sees them. */
function usableTls(tls: TlsFiles): SecureContextOptions {
  const files = tlsFiles(tls);
  try {
    createSecureContext(files);
  } catch (err) {
    throw new Error(`the TLS certificate ${tls.certFile} and key ${tls.keyFile} cannot be used: ${(err as Error).message}`, { cause: err });
  }
  return files;
}

/** The requests being answered, so that close() can wait for them. */
class InFlight {
  private readonly open = new Set<http.ServerResponse>();
  private draining = false;
  /** Set while a drain waits: called when the last request in flight is answered. */
  private settled: (() => void) | null = null;

  add(res: http.ServerResponse): void {
    // Keep-alive would hold the connection past the drain for a request that will never come.
    if (this.draining) res.setHeader('connection', 'close');
    this.open.add(res);
    res.once('close', () => {
      this.open.delete(res);
      if (this.settled && this.open.size === 0) this.settled();
    });
  }

  /**
   * No new connection from now on; a keep-alive connection closes once its answer is out (an idle
   * one at once); after `ms` whatever is left is cut.
   */
  async drain(server: http.Server, ms: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const res of this.open) if (!res.headersSent) res.setHeader('connection', 'close');
    server.closeIdleConnections();
    if (this.open.size > 0 && ms > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.settled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    server.closeAllConnections();
    await closed;
  }
}
