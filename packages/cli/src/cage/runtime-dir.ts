// Where a running cage keeps its UAPI socket, so `wirecage show` (and `wg`,
// pointed at it) can find it: private to the invoking user, hidden inside
// the cage because the UAPI can read the private key.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'wirecage');
  if (uid === 0) return '/run/wirecage';
  if (existsSync(`/run/user/${uid}`)) return `/run/user/${uid}/wirecage`;
  return join(tmpdir(), `wirecage-${uid}`);
}

/** Files of one cage in the runtime dir: `<tun>@<pid>.<kind>`, so cages with the same tunnel name coexist. */
export function cageFile(dir: string, tun: string, pid: number, kind: 'sock' | 'resolv.conf' | 'nsswitch.conf'): string {
  return join(dir, `${tun}@${pid}.${kind}`);
}

export interface CageEntry {
  tun: string;
  pid: number;
  socket: string;
}

/** Running cages (by their UAPI sockets); files of cages whose process is gone (killed with SIGKILL) are removed. */
export function listCages(dir: string): CageEntry[] {
  if (!existsSync(dir)) return [];
  const out: CageEntry[] = [];
  for (const f of readdirSync(dir)) {
    const m = /^(.+)@(\d+)\.(sock|resolv\.conf|nsswitch\.conf)$/.exec(f);
    if (!m) continue;
    const pid = Number(m[2]);
    if (!existsSync(`/proc/${pid}`)) {
      rmSync(join(dir, f), { force: true });
      continue;
    }
    if (m[3] === 'sock') out.push({ tun: m[1]!, pid, socket: join(dir, f) });
  }
  return out.sort((a, b) => a.tun.localeCompare(b.tun) || a.pid - b.pid);
}
