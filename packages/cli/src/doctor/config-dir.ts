// The config directory holds the server tokens (config.toml) and the client
// keys (keys/NAME.key): wirecage writes them 0600 in 0700 directories, but a
// copy, an unpack or a chmod -R can loosen them, and then others read them.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { configDir } from '../servers/config.js';
import type { DoctorCheck } from './check.js';

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

export function checkConfigDir(dir = configDir()): DoctorCheck {
  const name = 'config directory';
  const top = lstatSync(dir, { throwIfNoEntry: false });
  if (!top) return { name, ok: true, detail: `${dir} does not exist yet (add-server and run NAME create it 0700)` };
  const loose: string[] = [];
  const fixes: string[] = [];
  // Directories: 0700; files (tokens, keys): 0600. Group and others get nothing.
  const visit = (path: string, depth: number) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return; // not ours to judge: wirecage never makes links there
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o077) !== 0) {
      loose.push(`${path} is ${octal(st.mode)}`);
      fixes.push(`chmod ${octal(want).slice(1)} ${path}`);
    }
    if (st.isDirectory() && depth < 2) for (const f of readdirSync(path).sort()) visit(join(path, f), depth + 1);
  };
  visit(dir, 0);
  if (loose.length === 0) return { name, ok: true, detail: `${dir}: directories 0700, files 0600` };
  return { name, ok: false, detail: `others may read it: ${loose.join(', ')}`, fix: `run \`${fixes.join(' && ')}\`` };
}
