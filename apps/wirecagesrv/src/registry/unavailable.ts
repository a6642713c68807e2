// A registry that cannot be reached right now (a fleet's database down,
// restarting, or the connection cut) is not the server's bug: the API says
// 503 with Retry-After, not 500, and the client tries again.

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

export function registryUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting down, cannot connect now).
  if (/^08/.test(code) || /^57P0[123]$/.test(code) || SOCKET_CODES.has(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Connection ended unexpectedly|is not queryable/i.test(message);
}
