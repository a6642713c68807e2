// A failure `wirecage run` reports as `wirecage: MESSAGE` with exit 125: its own file, so that
// stage 2 can load the registration code (which throws it) without the whole of from-config.ts.
import { WirecageError } from '../errors.js';

export class RunError extends WirecageError {
  override name = 'RunError';
}
