// The API's listening socket: plain HTTP, or HTTPS with a certificate and key
// read from files. Slow or idle clients are cut off by timeouts, and what
// node:http answers by itself is answered as JSON (protocol-errors.ts).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { formatListen, type ListenAddress } from '../listen.js';
import { answerProtocolErrors, requireHost } from './protocol-errors.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface ApiServer {
  server: http.Server;
  /** The bound TCP address, or the socket path. */
  address: AddressInfo | string;
  tls: boolean;
  close(): Promise<void>;
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
  return `--api-listen ${formatListen(at)} is not a loopback address: serve it over HTTPS (--tls-cert FILE --tls-key FILE), ` +
    'or pass --insecure-http to accept that registration tokens travel in clear (e.g. behind a TLS-terminating proxy on a private network)';
}

// node:http looks for requests over their time every connectionsCheckingInterval (30 s by
// default, so a stalled request lived up to 45 s); once a second keeps the bounds near what they say.
const TIMEOUTS = { requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 };
/** requireHost answers a missing Host as JSON instead. */
const OPTIONS = { ...TIMEOUTS, requireHostHeader: false };

/** A TCP address, a Unix socket path (for a reverse proxy on the same host, and for tests), or a bound listening fd. */
export type ApiListen = ListenAddress | { path: string } | { fd: number };

export async function listenApi(apiHandler: http.RequestListener, at: ApiListen, tls?: TlsFiles): Promise<ApiServer> {
  const handler = requireHost(apiHandler);
  let server: http.Server;
  if (tls) {
    const read = (path: string, what: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new Error(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
      }
    };
    const cert = read(tls.certFile, 'certificate (--tls-cert)');
    const key = read(tls.keyFile, 'key (--tls-key)');
    try {
      server = https.createServer({ cert, key, ...OPTIONS }, handler);
    } catch (err) {
      throw new Error(`the TLS certificate ${tls.certFile} and key ${tls.keyFile} cannot be used: ${(err as Error).message}`, { cause: err });
    }
  } else {
    server = http.createServer(OPTIONS, handler);
  }
  answerProtocolErrors(server);
  await new Promise<void>((resolve, reject) => {
    const where = 'path' in at ? at.path : 'fd' in at ? `fd ${at.fd}` : `${at.host} port ${at.port}`;
    server.once('error', (err) => reject(new Error(`the API cannot listen on ${where}: ${err.message}`)));
    server.listen('path' in at ? { path: at.path, exclusive: true } : 'fd' in at ? { fd: at.fd } : { host: at.host, port: at.port, exclusive: true }, resolve);
  });
  return {
    server,
    address: server.address() as AddressInfo | string,
    tls: tls !== undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
