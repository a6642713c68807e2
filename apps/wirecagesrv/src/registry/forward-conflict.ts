import { RegistryError } from './errors.js';
import type { ForwardRecord } from './types.js';

/** The public port is held by another forward, or the peer is unknown. */
export class ForwardConflictError extends RegistryError {
  override name = 'ForwardConflictError';
  constructor(
    message: string,
    readonly existing: ForwardRecord | null,
  ) {
    super(message);
  }
}

/** The peer already has the most forwards allowed (ForwardStore.add's maxPerPeer). */
export class ForwardLimitError extends RegistryError {
  override name = 'ForwardLimitError';
  constructor(readonly limit: number) {
    super(`this peer already has ${limit} forwards, the most allowed; remove one first`);
  }
}
