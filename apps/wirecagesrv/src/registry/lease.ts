// Lease arithmetic. A registration holds its addresses for a lease
// (`up --lease`, default 30 days) counted from the last re-registration or,
// at most once per renewal step, from a completed handshake; a peer whose
// lease ran out is removed like a DELETE /v1/register. Times are unix ms.

export const DEFAULT_LEASE = '30d';
/** A handshake moves the lease at most this often (registry writes stay rare), or every half lease when that is shorter. */
export const LEASE_RENEW_STEP_MS = 3_600_000;
/** The shortest lease: shorter ones would expire between a registration and its first handshake. */
export const MIN_LEASE_MS = 1000;
/** The longest: ten years, far inside what a Date holds. */
export const MAX_LEASE_MS = 3650 * 86_400_000;

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30d", "12h", "90m", "3s", or several ("1d12h") into ms; Error with a usable message otherwise. */
export function parseLease(text: string, what = '--lease'): number {
  const t = text.trim().toLowerCase();
  if (!/^(\d+[smhd])+$/.test(t)) {
    throw new Error(`${what} "${text}" must be a duration such as 30d, 12h, 90m or 45s`);
  }
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smhd])/g)) ms += Number(n) * UNITS[unit!]!;
  if (!(ms >= MIN_LEASE_MS && ms <= MAX_LEASE_MS)) {
    throw new Error(`${what} "${text}" must be between 1s and 3650d`);
  }
  return ms;
}

/** How much a handshake must extend a lease before it is written: the renewal step, or half a short lease. */
export function renewStep(leaseMs: number): number {
  return Math.min(LEASE_RENEW_STEP_MS, Math.floor(leaseMs / 2));
}

/** How often the server looks for expired leases: a quarter lease, between 1 s and a minute. */
export function expiryCheckInterval(leaseMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(leaseMs / 4)));
}
