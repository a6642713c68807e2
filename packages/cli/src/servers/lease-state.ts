// The registration `wirecage run NAME` keeps: keys/NAME.lease.json next to the
// client key (0600, written atomically with wg-engine's writeSecretFileAtomic)
// holds the server's whole answer to /v1/register, when it was asked for, the
// API URL and client key it was for, and the server's WireGuard public key
// pinned on the first successful registration (with, for a server added with
// --ca-file, the SHA-256 fingerprint of its TLS certificate).
//
// Why a state file and not config.toml: config.toml is the user's file
// (add-server writes it when asked to); a run never rewrites it, and a file
// rewritten by every run would race with hand edits and with other runs.
// The pin lives here for the same reason, and survives re-registrations:
// only `add-server NAME URL --replace` (or removing the file by hand) drops it.
//
// Why the certificate is pinned only with --ca-file: a certificate from a
// public CA is renewed every few months (a pin would break each time), and
// the public CAs already vouch for the name; a private CA or a self-signed
// certificate has nobody else checking what it signs.
//
// This module stays small (node:fs, wg-engine and errors.ts only): stage 2 imports it to
// drop a stored answer the server no longer honours.
import { readFileSync, rmSync } from 'node:fs';
import { writeSecretFileAtomic } from '@wirecage/wg-engine/config';
import { WirecageError } from '../errors.js';

export const LEASE_STATE_VERSION = 1;

export interface LeaseState {
  version: number;
  /** The API URL and client public key the answer is for. */
  api_url: string;
  client_public_key: string;
  /** When the registration was asked for (RFC 3339, the client's clock). */
  registered_at: string;
  /** The server's answer, whole (lease_expires included). */
  registration: Record<string, unknown>;
  pinned_server_public_key: string;
  /** add-server --ca-file: the SHA-256 fingerprint ("AB:CD:…") of the server's TLS leaf certificate. */
  pinned_tls_certificate_sha256?: string;
}

/** What outlives a dropped answer. */
export interface LeasePins {
  version: number;
  pinned_server_public_key: string;
  pinned_tls_certificate_sha256?: string;
}

/** What a state file holds: a usable answer or not, and the pin (which outlives a dropped answer). */
export interface StoredLease {
  file: string;
  /** null: missing, unreadable, or without an answer. */
  state: LeaseState | null;
  pin: string | null;
  /** The pinned certificate fingerprint (kept, as the key pin, when the answer is dropped). */
  certPin: string | null;
  /** Why `state` is null, for messages ("missing", "not JSON", ...). */
  problem?: string;
}

export function readLeaseState(file: string): StoredLease {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      file,
      state: null,
      pin: null,
      certPin: null,
      problem: code === 'ENOENT' ? 'missing' : `unreadable (${code ?? (err as Error).message})`,
    };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { file, state: null, pin: null, certPin: null, problem: 'not JSON' };
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    return { file, state: null, pin: null, certPin: null, problem: 'not a JSON object' };
  const d = doc as Record<string, unknown>;
  const pin = typeof d.pinned_server_public_key === 'string' && d.pinned_server_public_key !== '' ? d.pinned_server_public_key : null;
  const c = d.pinned_tls_certificate_sha256;
  const certPin = typeof c === 'string' && c !== '' ? c : null;
  const reg = d.registration;
  if (d.version !== LEASE_STATE_VERSION) return { file, state: null, pin, certPin, problem: `of version ${String(d.version)}` };
  if (reg === undefined) return { file, state: null, pin, certPin, problem: 'without a registration' };
  if (
    typeof d.api_url !== 'string' ||
    typeof d.client_public_key !== 'string' ||
    typeof d.registered_at !== 'string' ||
    !reg ||
    typeof reg !== 'object' ||
    Array.isArray(reg) ||
    pin === null
  ) {
    return { file, state: null, pin, certPin, problem: 'incomplete' };
  }
  return { file, state: d as unknown as LeaseState, pin, certPin };
}

/** Writes the state (0600, atomically: a reader sees the old file or the new one, never half of one). */
export function writeLeaseState(file: string, state: LeaseState | LeasePins): void {
  writeSecretFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}

export interface LeaseContext {
  apiUrl: string;
  clientPublicKey: string;
  /** ms since the epoch. */
  now: number;
}

/** registered_at and lease_expires in ms; null when either is missing or not a time. */
export function leaseTimes(state: LeaseState): { registeredAt: number; expires: number } | null {
  const registeredAt = Date.parse(state.registered_at);
  const e = state.registration.lease_expires;
  const expires = typeof e === 'string' ? Date.parse(e) : NaN;
  if (!Number.isFinite(registeredAt) || !Number.isFinite(expires)) return null;
  return { registeredAt, expires };
}

/** The stored answer, when it is for this API URL and client key, matches the pin and has a lease. */
function sameClient(
  stored: StoredLease,
  ctx: LeaseContext,
): { state: LeaseState; times: { registeredAt: number; expires: number } } | string {
  const s = stored.state;
  if (!s) return stored.problem ?? 'missing';
  if (s.api_url !== ctx.apiUrl) return `for another API URL (${s.api_url})`;
  if (s.client_public_key !== ctx.clientPublicKey) return 'for another client key';
  if (s.registration.server_public_key !== s.pinned_server_public_key) return 'for another server key than the pinned one';
  const times = leaseTimes(s);
  if (!times) return 'without a lease';
  return { state: s, times };
}

/**
 * Whether `run` may build the tunnel from the stored answer without asking the API: it is for this
 * URL and key, and less than half its lease has passed (registered_at + (lease_expires - registered_at) / 2).
 */
export function reuseDecision(stored: StoredLease, ctx: LeaseContext): { reuse: true; state: LeaseState } | { reuse: false; why: string } {
  const c = sameClient(stored, ctx);
  if (typeof c === 'string') return { reuse: false, why: c };
  const half = c.times.registeredAt + (c.times.expires - c.times.registeredAt) / 2;
  if (ctx.now >= half) return { reuse: false, why: 'past half its lease' };
  return { reuse: true, state: c.state };
}

/** The stored answer to fall back on when registering fails: for this URL and key, lease not over. */
export function usableOnFailure(stored: StoredLease, ctx: LeaseContext): LeaseState | null {
  const c = sameClient(stored, ctx);
  if (typeof c === 'string') return null;
  return ctx.now < c.times.expires ? c.state : null;
}

/** Thrown when a registration answer names another server key than the pinned one (exit 125). */
export class PinMismatchError extends WirecageError {
  override name = 'PinMismatchError';
}

export function checkPin(pin: string | null, answerKey: unknown, name: string, apiUrl: string, file: string): void {
  if (pin === null || answerKey === pin) return;
  throw new PinMismatchError(
    `${apiUrl} answered with the server key ${String(answerKey)}, but the key pinned for "${name}" (in ${file}) is ${pin}: ` +
      `someone may be impersonating the server, so nothing was sent. If the server's key really changed, re-pin with: ` +
      `wirecage add-server ${name} ${apiUrl} --replace`,
  );
}

/** Thrown when the server's TLS certificate is not the pinned one (exit 125); nothing was sent. */
export class CertificatePinMismatchError extends WirecageError {
  override name = 'CertificatePinMismatchError';
}

export function certificatePinMismatch(
  seen: string,
  pinned: string,
  name: string,
  apiUrl: string,
  file: string,
): CertificatePinMismatchError {
  return new CertificatePinMismatchError(
    `${apiUrl} presented a TLS certificate with the SHA-256 fingerprint ${seen}, but the certificate pinned for "${name}" (in ${file}) is ${pinned}: ` +
      `someone may be impersonating the server, so nothing was sent (not even the token). If the server's certificate really changed ` +
      `(renewed, or a new key), check the new fingerprint with the server's admin (openssl x509 -noout -fingerprint -sha256 -in CERT) and re-pin with: ` +
      `wirecage add-server ${name} ${apiUrl} --ca-file CA.pem --replace`,
  );
}

/**
 * Stage 2, when the handshake fails with a stored answer (the server forgot the peer): drops the
 * answer so that the registration after it (in this run, or the next run) is a fresh one, keeping
 * the pins (removing the whole file would let whoever can block a handshake have the next
 * registration trust a new key). A file that cannot be read back is removed. Returns an error
 * message, or null when done.
 */
export function forgetRegistration(file: string): string | null {
  const stored = readLeaseState(file);
  try {
    if (stored.pin) {
      const pins: LeasePins = { version: LEASE_STATE_VERSION, pinned_server_public_key: stored.pin };
      if (stored.certPin) pins.pinned_tls_certificate_sha256 = stored.certPin;
      writeLeaseState(file, pins);
    } else rmSync(file, { force: true });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
