// Where a running cage keeps its UAPI socket, so `wirecage show` (and `wg`,
// pointed at it) can find it: private to the invoking user, hidden inside
// the cage because the UAPI can read the private key.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'wirecage');
  if (uid === 0) return '/run/wirecage';
  if (existsSync(`/run/user/${uid}`)) return `/run/user/${uid}/wirecage`;
  return join(tmpdir(), `wirecage-${uid}`);
}
