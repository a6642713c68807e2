// Where a running cage keeps its UAPI socket, so `wirecage show` (and `wg`,
// pointed at it) can find it: private to the invoking user, out of the cage's
// sight (the UAPI can read the private key). The fallback under /tmp is a
// name anyone could have taken first, so the directory is checked, never
// trusted, and files are created in it without following links.
import { closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WirecageError } from '../errors.js';

export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'wirecage');
  if (uid === 0) return '/run/wirecage';
  if (existsSync(`/run/user/${uid}`)) return `/run/user/${uid}/wirecage`;
  return join(tmpdir(), `wirecage-${uid}`);
}

export class RuntimeDirError extends WirecageError {
  override name = 'RuntimeDirError';
}

/**
 * Makes the runtime dir (mode 0700) or checks the one there: a real directory (no symlink) owned
 * by this user with no access for anyone else, or a RuntimeDirError that says what is wrong.
 */
export function ensureRuntimeDir(dir: string): void {
  try {
    mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new RuntimeDirError(`cannot make the runtime dir ${dir}: ${(err as Error).message}`);
    }
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  const why = st.isSymbolicLink()
    ? 'is a symbolic link'
    : !st.isDirectory()
      ? 'is not a directory'
      : st.uid !== uid
        ? `is owned by uid ${st.uid}, not by you (uid ${uid})`
        : (st.mode & 0o077) !== 0
          ? `has mode ${(st.mode & 0o777).toString(8)}, open to others`
          : null;
  if (why) {
    throw new RuntimeDirError(
      `the runtime dir ${dir} ${why}: refusing to keep the cage's control socket there; remove it, or set XDG_RUNTIME_DIR to a directory of your own`,
    );
  }
}

/** Writes a new file in the (checked) runtime dir: never through a link, never over an existing file. */
export function writeCageFile(file: string, content: string, mode = 0o644): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

/**
 * Files of one cage in the runtime dir: `<tun>@<pid>.<kind>`, so cages with the same tunnel name
 * coexist. `cage.json` holds what `wirecage ps` shows besides the tunnel's state (named.ts).
 */
export function cageFile(dir: string, tun: string, pid: number, kind: 'sock' | 'resolv.conf' | 'nsswitch.conf' | 'cage.json'): string {
  return join(dir, `${tun}@${pid}.${kind}`);
}

/**
 * A named cage's control socket, `<NAME>.ctl` (control.ts), and the lock file whose flock its
 * stage 2 holds for its whole life, `<NAME>.lock` (named.ts): the kernel drops the lock when the
 * cage dies however it dies, so a name is never left taken by a killed cage.
 */
export function namedCageFile(dir: string, name: string, kind: 'ctl' | 'lock'): string {
  return join(dir, `${name}.${kind}`);
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
    const m = /^(.+)@(\d+)\.(sock|resolv\.conf|nsswitch\.conf|cage\.json|health\.json)$/.exec(f);
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
