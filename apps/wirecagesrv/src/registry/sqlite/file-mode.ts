// The registry holds every peer's real endpoint (where it connects from), so
// the file and SQLite's -wal and -shm next to it are the owner's alone (0600),
// whatever the umask. A new file is created 0600 before SQLite opens it
// (SQLite gives its -wal and -shm the mode of the database file); the modes
// of existing files are corrected at every start and reported, since a looser
// mode means the file has been readable by others until now.
import { chmodSync, closeSync, constants, openSync, statSync } from 'node:fs';

export const REGISTRY_FILE_MODE = 0o600;
const SIDE_FILES = ['', '-wal', '-shm', '-journal'];

/** Creates `path` empty with mode 0600; false when it exists already. */
export function createPrivateFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, REGISTRY_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  closeSync(fd);
  // A umask such as 0277 would have taken the owner's write bit too.
  chmodSync(path, REGISTRY_FILE_MODE);
  return true;
}

/**
 * Sets the registry and its side files to 0600 where they are looser (or
 * stricter: SQLite must read and write them). One message per file changed,
 * or that could not be changed, for the log.
 */
export function fixRegistryModes(path: string): string[] {
  const notes: string[] = [];
  for (const suffix of SIDE_FILES) {
    const file = path + suffix;
    let mode: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) continue;
      mode = st.mode & 0o777;
    } catch {
      continue; // absent: nothing to fix
    }
    if (mode === REGISTRY_FILE_MODE) continue;
    const was = mode.toString(8).padStart(4, '0');
    try {
      chmodSync(file, REGISTRY_FILE_MODE);
      notes.push(`${file} had mode ${was}${mode & 0o077 ? " (others could read peers' endpoints)" : ''}; set it to 0600`);
    } catch (err) {
      notes.push(`${file} has mode ${was} and cannot be set to 0600: ${(err as Error).message}`);
    }
  }
  return notes;
}
