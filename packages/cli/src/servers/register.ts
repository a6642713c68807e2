// `wirecage run NAME`: the client key for that server (made on first use),
// registration with the server's API, and the wg-quick-shaped config built
// from the answer, so the cage is set up exactly as from a file. The answer
// is kept (lease-state.ts) and reused until half its lease has passed, so a
// loop of runs asks the API once, and runs go on while the API is down.
// Stage 2 registers again (registerAfresh), once, when the handshake with a
// stored answer fails, and (renewRegistration) whenever handshakes fail for
// --reresolve-after while the command runs. Each run that goes on at once has a
// key (and so a registration) of its own: key-slot.ts. A fleet's answer also
// lists every node's endpoint (server_endpoints, server-endpoints.ts), kept
// with the rest of the answer: stage 2 fails over along it.
import { isIP } from 'node:net';
import { existsSync } from 'node:fs';
import {
  generatePrivateKey,
  keyToBase64,
  parseCidr,
  parseKeyBase64,
  publicKeyOf,
  readKeyFile,
  writeSecretFileAtomic,
  SecretFileError,
  type Cidr,
} from '@wirecage/wg-engine';
import { parseEndpoint, type WgQuickConfig } from '../config/wg-quick.js';
import { RunError } from '../cage/run-error.js';
import { configFile, keyFileFor, loadServers, resolveCaFile } from './config.js';
import { keySlotFiles, type KeySlotFiles } from './key-slot.js';
import { ApiError, callApi, type TlsTrust } from './http.js';
import {
  LEASE_STATE_VERSION,
  certificatePinMismatch,
  checkPin,
  forgetRegistration,
  readLeaseState,
  reuseDecision,
  usableOnFailure,
  writeLeaseState,
  type LeaseState,
  type StoredLease,
} from './lease-state.js';
import { proofSigner } from './proof.js';
import type { ServerApi } from './publish.js';
import { readCaFile } from './tls-trust.js';
import { EndpointListError, serverEndpoints } from './server-endpoints.js';

export interface Registration {
  client_address: string;
  client_address6?: string;
  server_public_key: string;
  server_endpoint: string;
  /** A fleet's: every endpoint the client may use, server_endpoint first (server-endpoints.ts); absent from older servers. */
  server_endpoints?: string[];
  dns?: string[];
  mtu?: number;
  allowed_ips?: string[];
  persistent_keepalive?: number;
  /** RFC 3339 (UTC): when the server forgets the peer unless it registers again or handshakes. */
  lease_expires?: string;
}

/** The key for server `name` (in `file`, a slot's key: key-slot.ts); created (0600, never replacing another) when there is none yet. */
export function clientKey(name: string, file = keyFileFor(name)): { file: string; key: Buffer; warning: string | null } {
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

/** A server to register with: from config.toml in stage 1, from the CageSpec in stage 2 (which has no config.toml to read). */
export interface ServerTarget {
  name: string;
  apiUrl: string;
  token: string;
  /** add-server --ca-file: the CA certificates (PEM), read by stage 1. */
  ca?: string;
  /** keys/NAME.lease.json, or the run's slot's keys/NAME.k.lease.json. */
  leaseFile: string;
}

/** The TLS trust for the server's API: its own CA and the pinned certificate, when added with --ca-file. */
export function tlsTrustFor(t: ServerTarget, pinnedCertificate: string | null): TlsTrust | undefined {
  if (t.ca === undefined) return undefined;
  return { ca: t.ca, pinnedCertificate, mismatch: (seen, pinned) => certificatePinMismatch(seen, pinned, t.name, t.apiUrl, t.leaseFile) };
}

/** How to trust a certificate the public CAs do not vouch for (or that the --ca-file CA did not sign). */
function trustHint(t: ServerTarget): string {
  return t.ca === undefined
    ? `for a self-signed certificate or a private CA: wirecage add-server ${t.name} ${t.apiUrl} --ca-file CA.pem --replace`
    : `the certificate must be signed by the CA given to add-server --ca-file (or be that self-signed certificate); to trust another: wirecage add-server ${t.name} ${t.apiUrl} --ca-file CA.pem --replace`;
}

export async function register(
  apiUrl: string,
  token: string,
  publicKey: string,
  timeoutMs = 15_000,
  tls?: { trust?: TlsTrust; hint?: string },
): Promise<{ registration: Registration; certificate: string | null }> {
  const { body, certificate } = await callApi(
    {
      method: 'POST',
      url: `${apiUrl}/v1/register`,
      token,
      body: JSON.stringify({ token, client_public_key: publicKey }),
      timeoutMs,
      doing: 'register with',
      tls: tls?.trust,
      trustHint: tls?.hint,
    },
    'the registration',
  );
  return { registration: body as unknown as Registration, certificate };
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
  // The cage's own address: a host prefix, whatever prefix length the server wrote.
  const host = (field: 'client_address' | 'client_address6', family: 4 | 6): Cidr => {
    const text = str(field).replace(/\/\d+$/, '');
    try {
      return parseCidr(text, { family });
    } catch {
      return bad(field, `not an IPv${family} address`);
    }
  };
  const addresses = [host('client_address', 4)];
  if (r.client_address6 !== undefined && r.client_address6 !== '') addresses.push(host('client_address6', 6));
  let publicKey: Buffer;
  try {
    publicKey = parseKeyBase64(str('server_public_key'), 'server_public_key');
  } catch {
    return bad('server_public_key', 'not a WireGuard key');
  }
  // Written into the peer as a wg-quick Endpoint would be, so held to the same rule.
  const endpoint =
    parseEndpoint(str('server_endpoint')) ?? bad('server_endpoint', 'not host:port, IPv4:port or [IPv6]:port with a port in 1-65535');
  // The others are where stage 2 fails over to (read again from the stored answer): held to the same rule now.
  try {
    serverEndpoints(r);
  } catch (err) {
    if (!(err instanceof EndpointListError)) throw err;
    throw new RunError(`${source}: the server's answer has ${err.message}`);
  }
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
    peers: [{ publicKey, endpoint, allowedIps, persistentKeepalive: ka || undefined, line: 0 }],
  };
}

interface RegisterOptions {
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

interface ConfigOptions extends RegisterOptions {
  /** The key slot the run holds (key-slot.ts's claimKeySlot); slot 1 when not given. */
  slot?: KeySlotFiles;
}

/**
 * Registers (waiting once for a Retry-After of at most MAX_RETRY_AFTER_S when nothing is stored to
 * fall back on), checks the pins and stores the answer with them. `fallback`: whether the stored
 * answer may stand in when registering fails transiently (not in registerAfresh: it just failed).
 */
async function registerAndStore(
  t: ServerTarget,
  clientPublicKey: string,
  stored: StoredLease,
  fallback: boolean,
  opts: RegisterOptions,
): Promise<{ registration: Registration; fromStore: boolean; certPin: string | null; warning: string | null }> {
  const now = opts.now ?? Date.now;
  const ctx = { apiUrl: t.apiUrl, clientPublicKey, now: now() };
  const fallbackFor = (err: unknown, at: number) => (fallback && isTransient(err) ? usableOnFailure(stored, { ...ctx, now: at }) : null);
  const tls = { trust: tlsTrustFor(t, stored.certPin), hint: trustHint(t) };
  const registeredAt = new Date(now());
  let answer: { registration: Registration; certificate: string | null };
  try {
    try {
      answer = await register(t.apiUrl, t.token, clientPublicKey, undefined, tls);
    } catch (err) {
      const wait = err instanceof ApiError && err.status === 429 ? err.retryAfterSeconds : null;
      if (wait === null || wait > MAX_RETRY_AFTER_S || fallbackFor(err, ctx.now)) throw err;
      // Rate-limited with nothing stored to fall back on: wait as asked, once, and try once more.
      await (opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(wait * 1000);
      answer = await register(t.apiUrl, t.token, clientPublicKey, undefined, tls);
    }
  } catch (err) {
    const usable = fallbackFor(err, now());
    if (!usable) throw err;
    return {
      registration: usable.registration as unknown as Registration,
      fromStore: true,
      certPin: stored.certPin,
      warning: `${(err as Error).message}; using the registration stored in ${t.leaseFile} (lease until ${String(usable.registration.lease_expires)})`,
    };
  }
  const reg = answer.registration;
  // The server's key is pinned on the first registration; an answer with another key is refused before anything is sent.
  checkPin(stored.pin, reg.server_public_key, t.name, t.apiUrl, t.leaseFile);
  // With --ca-file, the certificate too (checked during the TLS handshake, before the token went out).
  const certPin = t.ca === undefined ? null : (stored.certPin ?? answer.certificate);
  const state: LeaseState = {
    version: LEASE_STATE_VERSION,
    api_url: t.apiUrl,
    client_public_key: clientPublicKey,
    registered_at: registeredAt.toISOString(),
    registration: reg as unknown as Record<string, unknown>,
    pinned_server_public_key: stored.pin ?? reg.server_public_key,
    ...(certPin ? { pinned_tls_certificate_sha256: certPin } : {}),
  };
  let warning: string | null = null;
  try {
    writeLeaseState(t.leaseFile, state);
  } catch (err) {
    warning = `cannot store the registration (${(err as Error).message}): the next run registers again`;
  }
  return { registration: reg, fromStore: false, certPin, warning };
}

/** What stage 2 needs to register again when the handshake with a stored answer fails. */
export interface ReRegistration extends ServerTarget {
  clientPublicKey: string;
}

/** Everything `run NAME` needs: the config, the files the cage must not see, and the server's API for --publish. */
export interface ServerRunConfig {
  config: WgQuickConfig;
  hide: string[];
  warning: string | null;
  api: ServerApi;
  leaseStateFile?: string;
  reregister?: ReRegistration;
  server: ReRegistration;
}

/** Server `name` as added with add-server, and the key slot a run of it uses (slot 1 unless given). */
function serverTarget(name: string, given: KeySlotFiles | undefined): { target: ServerTarget; slot: KeySlotFiles } {
  const cfg = loadServers();
  const entry = cfg.servers.get(name);
  if (!entry) {
    const known = [...cfg.servers.keys()];
    throw new RunError(
      `no server named "${name}" in ${cfg.file}${known.length ? ` (known: ${known.join(', ')})` : ''} and no such file; add it with: wirecage add-server ${name} URL --token TOKEN`,
    );
  }
  const slot = given ?? keySlotFiles(name, 1);
  const target: ServerTarget = { name, apiUrl: entry.apiUrl, token: entry.token, leaseFile: slot.leaseFile };
  if (entry.caFile !== undefined) {
    target.ca = readCaFile(
      resolveCaFile(cfg.file, entry.caFile),
      `the CA file of server "${name}" (ca_file in ${cfg.file})`,
      `add the server again with: wirecage add-server ${name} ${entry.apiUrl} --ca-file CA.pem --replace`,
    );
  }
  return { target, slot };
}

/** Server `name`'s config for a run: from its stored answer while that is fresh, else from a registration. */
export async function configForServer(name: string, opts: ConfigOptions = {}): Promise<ServerRunConfig> {
  const { target, slot } = serverTarget(name, opts.slot);
  const { leaseFile } = slot;
  const { file, key, warning: keyWarning } = clientKey(name, slot.keyFile);
  const clientPublicKey = keyToBase64(publicKeyOf(key));
  const warnings = keyWarning ? [keyWarning] : [];
  const now = opts.now ?? Date.now;
  const stored = readLeaseState(leaseFile);
  const source = `${target.apiUrl}/v1/register`;

  const finish = (reg: Registration, fromStore: boolean, certPin: string | null): ServerRunConfig => {
    const config = registrationToConfig(reg, key, fromStore ? `${leaseFile} (the stored answer of ${source})` : source);
    const sign = proofSigner(key, config.peers[0]!.publicKey);
    return {
      config,
      hide: [file, configFile()], // the lease file and the CA copy are in the hidden config directory
      // Several warnings print as several `wirecage: warning:` lines.
      warning: warnings.length ? warnings.join('\nwirecage: warning: ') : null,
      api: {
        apiUrl: target.apiUrl,
        token: target.token,
        clientPublicKey,
        sign,
        tls: tlsTrustFor(target, certPin),
        endpointHost: config.peers[0]!.endpoint!.host,
      },
      // A stored answer whose handshake fails: stage 2 drops it and registers again, once.
      leaseStateFile: fromStore ? leaseFile : undefined,
      reregister: fromStore ? { ...target, clientPublicKey } : undefined,
      // Handshakes failing while the command runs: stage 2 re-checks the registration (lease-recheck.ts).
      server: { ...target, clientPublicKey },
    };
  };

  const decision = reuseDecision(stored, { apiUrl: target.apiUrl, clientPublicKey, now: now() });
  if (decision.reuse) {
    try {
      return finish(decision.state.registration as unknown as Registration, true, stored.certPin);
    } catch {
      // A stored answer that no longer passes the checks: register as if there were none.
    }
  }
  const r = await registerAndStore(target, clientPublicKey, stored, true, opts);
  if (r.warning) warnings.push(r.warning);
  return finish(r.registration, r.fromStore, r.certPin);
}

/**
 * Stage 2, after the handshake with a stored answer failed (the server forgot the client: removed,
 * its lease ended, a lost registry): drops that answer (keeping the pins), registers afresh (no
 * fallback on what just failed) and returns the config built from the new answer.
 */
export async function registerAfresh(
  r: ReRegistration,
  privateKey: Buffer,
  opts: RegisterOptions = {},
): Promise<{ config: WgQuickConfig; warning: string | null }> {
  const dropped = forgetRegistration(r.leaseFile);
  if (dropped) throw new RunError(`the stored registration ${r.leaseFile} could not be dropped (${dropped}): remove it and run again`);
  return renewRegistration(r, privateKey, opts);
}

/**
 * Registers again and stores the answer (both pins checked), without a fallback on the stored one:
 * for stage 2, whose handshakes failed (registerAfresh before the command, lease-recheck.ts while
 * it runs). A server that still knows the client answers the same addresses and renews the lease.
 */
export async function renewRegistration(
  r: ReRegistration,
  privateKey: Buffer,
  opts: RegisterOptions = {},
): Promise<{ config: WgQuickConfig; warning: string | null; leaseExpires: string | undefined }> {
  const fresh = await registerAndStore(r, r.clientPublicKey, readLeaseState(r.leaseFile), false, opts);
  return {
    config: registrationToConfig(fresh.registration, privateKey, `${r.apiUrl}/v1/register`),
    warning: fresh.warning,
    leaseExpires: fresh.registration.lease_expires,
  };
}
