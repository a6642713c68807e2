// The options both stores check the same way before they open anything.
import { hostname } from 'node:os';
import { RegistryError } from './errors.js';
import { DEFAULT_LEASE, parseLease } from './lease.js';
import type { RegistryOptions } from './types.js';

export function checkedOptions(opts: RegistryOptions): { leaseMs: number; node: string } {
  if (opts.maxPeers !== undefined && (!Number.isInteger(opts.maxPeers) || opts.maxPeers < 1)) {
    throw new RegistryError(`--max-peers must be a whole number of at least 1, not ${opts.maxPeers}`);
  }
  const leaseMs = opts.leaseMs ?? parseLease(DEFAULT_LEASE);
  if (!Number.isInteger(leaseMs) || leaseMs < 1)
    throw new RegistryError(`the lease must be a positive whole number of ms, not ${opts.leaseMs}`);
  const node = opts.node ?? hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(node)) {
    throw new RegistryError(`--node-name "${node}" must be 1-63 letters, digits, dots, dashes or underscores`);
  }
  return { leaseMs, node };
}

/** A postgres:// or postgresql:// URL, else a file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}
