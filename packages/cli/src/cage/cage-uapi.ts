// What a running cage's engine says over its UAPI socket (`wg show`'s
// protocol), for `wirecage show` and `ps`: read once, parsed, and a cage that
// does not answer named in the error.
import { uapiRequest } from '@wirecage/wg-engine';
import { parseUapiShow, type ShowInterface } from '../show-format.js';
import type { CageEntry } from './runtime-dir.js';
import { WirecageError } from '../errors.js';

export async function readCageUapi(cage: CageEntry): Promise<ShowInterface> {
  let text: string;
  try {
    text = await uapiRequest(cage.socket, 'get=1\n\n');
  } catch (err) {
    throw new WirecageError(
      `cannot read cage ${cage.tun} (pid ${cage.pid}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseUapiShow(text);
}
