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
