// `wirecage run NAME`: the client key for that server (made on first use),
// registration with the server's API, and the wg-quick-shaped config built
// from the answer, so the cage is set up exactly as from a file. The answer
// is kept (lease-state.ts) and reused until half its lease has passed, so a
// loop of runs asks the API once, and runs go on while the API is down.
import { isIP } from 'node:net';
import { existsSync } from 'node:fs';
import { generatePrivateKey, keyToBase64, parseCidr, parseKeyBase64, publicKeyOf, readKeyFile, writeSecretFileAtomic, SecretFileError } from '@wirecage/wg-engine';
import type { WgQuickConfig } from '../config/wg-quick.js';
import { RunError } from '../cage/from-config.js';
import { configFile, keyFileFor, leaseFileFor, loadServers } from './config.js';
import { ApiError, callApi } from './http.js';
import { LEASE_STATE_VERSION, checkPin, readLeaseState, reuseDecision, usableOnFailure, writeLeaseState } from './lease-state.js';
import { proofSigner } from './proof.js';
import type { ServerApi } from './publish.js';

export interface Registration {
  client_address: string;
  client_address6?: string;
  server_public_key: string;
  server_endpoint: string;
  dns?: string[];
  mtu?: number;
  allowed_ips?: string[];
  persistent_keepalive?: number;
  /** RFC 3339 (UTC): when the server forgets the peer unless it registers again or handshakes. */
  lease_expires?: string;
}

/** The key for server `name`; created (0600, never replacing another) when there is none yet. */
export function clientKey(name: string): { file: string; key: Buffer; warning: string | null } {
  const file = keyFileFor(name);
  if (!existsSync(file)) {
    try {
      writeSecretFileAtomic(file, `${keyToBase64(generatePrivateKey())}\n`, { overwrite: false });
    } catch (err) {
      // Another `wirecage run NAME` made it first: use that one.
      if (!(err instanceof SecretFileError && err.code === 'EEXIST')) throw err;
    }
  }
  return { file, ...readKeyFile(file) };
}

export async function register(apiUrl: string, token: string, publicKey: string, timeoutMs = 15_000): Promise<Registration> {
  const { body } = await callApi(
    { method: 'POST', url: `${apiUrl}/v1/register`, token, body: JSON.stringify({ token, client_public_key: publicKey }), timeoutMs, doing: 'register with' },
    'the registration',
  );
  return body as unknown as Registration;
}

/** The longest Retry-After a run waits for (once) before giving up on a 429. */
export const MAX_RETRY_AFTER_S = 30;

/** A failure the stored answer may stand in for: no answer, an unreadable one, 429 or 5xx (not a refusal such as 401). */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiError) return err.status === 429 || err.status >= 500;
  return err instanceof RunError;
}

/** The answer of /v1/register as the WgQuickConfig a file would give; every field is checked. */
export function registrationToConfig(r: Registration, privateKey: Buffer, source: string): WgQuickConfig {
  const bad = (field: string, why: string): never => {
    throw new RunError(`${source}: the server's answer has ${field} ${why}`);
  };
  const str = (field: keyof Registration): string => {
    const v = r[field];
    if (typeof v !== 'string' || v === '') bad(field, 'missing or not a string');
    return v as string;
  };
  const host = (field: 'client_address' | 'client_address6', family: 4 | 6): string => {
    const a = str(field).replace(/\/\d+$/, '');
    if (isIP(a) !== family) bad(field, `not an IPv${family} address`);
    return `${a}/${family === 4 ? 32 : 128}`;
  };
  const addresses = [parseCidr(host('client_address', 4))];
  if (r.client_address6 !== undefined && r.client_address6 !== '') addresses.push(parseCidr(host('client_address6', 6)));
  let publicKey: Buffer;
  try {
    publicKey = parseKeyBase64(str('server_public_key'), 'server_public_key');
  } catch {
    return bad('server_public_key', 'not a WireGuard key');
  }
  const ep = /^\[([^\]]+)\]:(\d+)$/.exec(str('server_endpoint')) ?? /^([^:[\]\s]+):(\d+)$/.exec(r.server_endpoint);
  if (!ep || Number(ep[2]) < 1 || Number(ep[2]) > 65535) bad('server_endpoint', 'not host:port');
  const dns = r.dns ?? [];
  if (!Array.isArray(dns) || dns.some((d) => typeof d !== 'string' || !isIP(d))) bad('dns', 'not a list of IP addresses');
  const allowed = r.allowed_ips ?? ['0.0.0.0/0', '::/0'];
  if (!Array.isArray(allowed)) bad('allowed_ips', 'not a list');
  const allowedIps = allowed.map((c) => {
    try {
      return parseCidr(c);
    } catch {
      return bad('allowed_ips', `entry ${JSON.stringify(c)} not a CIDR`);
    }
  });
  if (r.mtu !== undefined && (!Number.isInteger(r.mtu) || r.mtu < 576 || r.mtu > 65535)) bad('mtu', 'out of range');
  const ka = r.persistent_keepalive;
  if (ka !== undefined && (!Number.isInteger(ka) || ka < 0 || ka > 65535)) bad('persistent_keepalive', 'out of range');
  return {
    file: source,
    interface: { privateKey, addresses, dns: { servers: dns, search: [] }, mtu: r.mtu },
    peers: [{ publicKey, endpoint: { host: ep![1]!, port: Number(ep![2]) }, allowedIps, persistentKeepalive: ka || undefined, line: 0 }],
  };
}

/** Everything `run NAME` needs: the config, the files the cage must not see, and the server's API for --publish. */
export async function configForServer(
  name: string,
  opts: { sleep?: (ms: number) => Promise<void>; now?: () => number } = {},
): Promise<{ config: WgQuickConfig; hide: string[]; warning: string | null; api: ServerApi; leaseStateFile?: string }> {
  const cfg = loadServers();
  const entry = cfg.servers.get(name);
  if (!entry) {
    const known = [...cfg.servers.keys()];
    throw new RunError(
      `no server named "${name}" in ${cfg.file}${known.length ? ` (known: ${known.join(', ')})` : ''} and no such file; add it with: wirecage add-server ${name} URL --token TOKEN`,
    );
  }
  const { file, key, warning: keyWarning } = clientKey(name);
  const clientPublicKey = keyToBase64(publicKeyOf(key));
  const warnings = keyWarning ? [keyWarning] : [];
  const leaseFile = leaseFileFor(name);
  const now = opts.now ?? Date.now;
  const stored = readLeaseState(leaseFile);
  const ctx = { apiUrl: entry.apiUrl, clientPublicKey, now: now() };
  const source = `${entry.apiUrl}/v1/register`;

  const finish = (reg: Registration, fromStore: boolean) => {
    const config = registrationToConfig(reg, key, fromStore ? `${leaseFile} (the stored answer of ${source})` : source);
    const sign = proofSigner(key, config.peers[0]!.publicKey);
    return {
      config,
      hide: [file, configFile()], // the lease file is in the hidden config directory
      // Several warnings print as several `wirecage: warning:` lines.
      warning: warnings.length ? warnings.join('\nwirecage: warning: ') : null,
      api: { apiUrl: entry.apiUrl, token: entry.token, clientPublicKey, sign },
      // Stage 2 drops a stored answer whose handshake fails: the next run registers again.
      leaseStateFile: fromStore ? leaseFile : undefined,
    };
  };

  const decision = reuseDecision(stored, ctx);
  if (decision.reuse) {
    try {
      return finish(decision.state.registration as unknown as Registration, true);
    } catch {
      // A stored answer that no longer passes the checks: register as if there were none.
    }
  }

  const registeredAt = new Date(now());
  let reg: Registration;
  try {
    try {
      reg = await register(entry.apiUrl, entry.token, clientPublicKey);
    } catch (err) {
      const wait = err instanceof ApiError && err.status === 429 ? err.retryAfterSeconds : null;
      if (wait === null || wait > MAX_RETRY_AFTER_S || usableOnFailure(stored, ctx)) throw err;
      // Rate-limited with nothing stored to fall back on: wait as asked, once, and try once more.
      await (opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(wait * 1000);
      reg = await register(entry.apiUrl, entry.token, clientPublicKey);
    }
  } catch (err) {
    const fallback = isTransient(err) ? usableOnFailure(stored, { ...ctx, now: now() }) : null;
    if (!fallback) throw err;
    warnings.push(
      `${(err as Error).message}; using the registration stored in ${leaseFile} (lease until ${String(fallback.registration.lease_expires)})`,
    );
    return finish(fallback.registration as unknown as Registration, true);
  }

  // The server's key is pinned on the first registration; an answer with another key is refused before anything is sent.
  checkPin(stored.pin, reg.server_public_key, name, entry.apiUrl, leaseFile);
  const result = finish(reg, false);
  try {
    writeLeaseState(leaseFile, {
      version: LEASE_STATE_VERSION,
      api_url: entry.apiUrl,
      client_public_key: clientPublicKey,
      registered_at: registeredAt.toISOString(),
      registration: reg as unknown as Record<string, unknown>,
      pinned_server_public_key: stored.pin ?? reg.server_public_key,
    });
  } catch (err) {
    result.warning = [result.warning, `cannot store the registration (${(err as Error).message}): the next run registers again`].filter(Boolean).join('\nwirecage: warning: ');
  }
  return result;
}
