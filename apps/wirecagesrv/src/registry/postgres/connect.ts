// From a postgres:// URL to a pool of connections. Every connection says
// which node it serves (application_name, seen in pg_stat_activity), and no
// statement or lock wait runs unbounded: a stuck database turns into an error
// a caller can report, not a request that never ends. A connection the server
// drops while idle in the pool is reported, never thrown: the pool makes a
// new one on the next query.
import pg from 'pg';
import type { Logger } from '@wirecage/wg-engine';

/** A statement that runs longer fails (a registration is a few ms). */
export const STATEMENT_TIMEOUT_MS = 10_000;
/** How long a write waits for another node's lock, as SQLite's store waits for the file's. */
export const LOCK_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 10_000;

/** The URL as messages may show it: any password (in the user part or as a parameter) replaced by "***". */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}

export interface ConnectionSettings {
  /** The URL as given (with its password). */
  url: string;
  /** application_name: "wirecagesrv/<node>". */
  applicationName: string;
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  connectTimeoutMs?: number;
}

/** node-postgres settings for one connection (pool or client) of this node. */
export function clientConfig(s: ConnectionSettings): pg.ClientConfig {
  return {
    connectionString: s.url,
    application_name: s.applicationName,
    statement_timeout: s.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
    lock_timeout: s.lockTimeoutMs ?? LOCK_TIMEOUT_MS,
    connectionTimeoutMillis: s.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    keepAlive: true,
  };
}

export function settingsFor(url: string, node: string): ConnectionSettings {
  return { url, applicationName: `wirecagesrv/${node}` };
}

/** A pool for the store's queries; errors of idle connections go to the log. */
export function openPool(settings: ConnectionSettings, log: Logger, max = 10): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(settings), max, idleTimeoutMillis: 30_000 });
  pool.on('error', (err) => log.warn(`registry: an idle database connection failed (${describeError(err)}); the next query opens another`));
  return pool;
}

/**
 * What went wrong, in words safe for a public answer or a log: the server's own message, or the
 * socket error's code, never an address (a connection error names the host or the socket path).
 */
export function describeError(err: unknown): string {
  if (err instanceof pg.DatabaseError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') return `${e.syscall} failed (${e.code})`;
  const message = e instanceof Error ? e.message : String(err);
  // node-postgres's own errors ("Connection terminated unexpectedly", timeouts) carry no address.
  return message.replace(/\/[^\s,;)]+|\d+\.\d+\.\d+\.\d+(:\d+)?|\[[0-9a-f:]+\](:\d+)?/gi, '<address>');
}
