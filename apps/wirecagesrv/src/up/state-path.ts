// Where the registry lives when --state is not given: in the unit's
// StateDirectory= when systemd says so ($STATE_DIRECTORY, the first of a
// colon-separated list), else under $XDG_STATE_HOME as for any user.
import { join } from 'node:path';
import { defaultStatePath } from '../registry/index.js';

export function statePathDefault(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.STATE_DIRECTORY?.split(':')[0];
  return dir ? join(dir, 'registry.db') : defaultStatePath();
}
