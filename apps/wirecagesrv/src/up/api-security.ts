// How the API may be reached: TLS or a deliberate plain HTTP, the reverse
// proxies believed about the client, and the registration lease.
import { resolve } from 'node:path';
import type { Logger } from '@wirecage/wg-engine';
import { usage } from '../api/admin-client.js';
import { TrustedProxies } from '../api/client-address.js';
import { isLoopback, plainHttpRefusal, type TlsFiles } from '../api/listen.js';
import { formatListen, type ListenAddress } from '../listen.js';
import { parseLease } from '../registry/index.js';

export interface ApiSecurityFlags {
  'tls-cert'?: string;
  'tls-key'?: string;
  'insecure-http': boolean;
  'trusted-proxy'?: string[];
  lease: string;
}

export function apiSecurity(
  flags: ApiSecurityFlags,
  apiListen: ListenAddress,
  log: Logger,
): { tls: TlsFiles | undefined; leaseMs: number; trustedProxies: string[] } {
  // Usage errors (exit 2): checked before any socket is bound.
  // Absolute: a reload reads them again, from wherever stage 2 then runs.
  const tls =
    flags['tls-cert'] && flags['tls-key'] ? { certFile: resolve(flags['tls-cert']), keyFile: resolve(flags['tls-key']) } : undefined;
  const plain = plainHttpRefusal(apiListen, tls !== undefined, flags['insecure-http']);
  if (plain) usage(plain);
  let leaseMs: number, trustedProxies: string[];
  try {
    leaseMs = parseLease(flags.lease);
    trustedProxies = (flags['trusted-proxy'] ?? []).map((t) => t.trim()).filter((t) => t !== '');
    new TrustedProxies(trustedProxies);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (!tls && !isLoopback(apiListen.host)) {
    log.warn(
      `--insecure-http: the API on http://${formatListen(apiListen)} is plain HTTP: registration tokens travel in clear, and so does the answer that tells clients which server key to trust`,
    );
  }
  return { tls, leaseMs, trustedProxies };
}
