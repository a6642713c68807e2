// Opening the state file. A registry that cannot be read or fails SQLite's
// integrity check stops the server: starting over with an empty registry
// would silently renumber every peer, and overwriting the file would destroy
// what an operator could still recover. So every check here only reads, and
// nothing is written until the file has passed them all.
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { RegistryError } from '../errors.js';
import { createPrivateFile, fixRegistryModes } from './file-mode.js';
import { APPLICATION_ID, migrate } from './migrations.js';

const LEAVE_IT =
  'It was left untouched: restore it from a backup, or move it away to start an empty registry (every peer then registers anew).';

/** Opens, checks and migrates the registry; `note` hears of file modes it had to fix. */
export function openDatabase(path: string, note: (message: string) => void = () => {}): Database.Database {
  let exists = false;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new RegistryError(`the registry ${path} is not a regular file. ${LEAVE_IT}`);
    exists = true;
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new RegistryError(`cannot inspect the registry ${path}: ${(err as Error).message}`);
    }
  }
  if (!exists) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new RegistryError(`cannot create the directory for the registry ${path}: ${(err as Error).message}`);
    }
    try {
      // 0600 from the first byte; an empty file is a valid empty database to SQLite.
      createPrivateFile(path);
    } catch (err) {
      throw new RegistryError(`cannot create the registry ${path}: ${(err as Error).message}`);
    }
  }
  // Modes only, never content: a file that fails the checks below is still left as it was.
  for (const n of fixRegistryModes(path)) note(n);

  let db: Database.Database;
  try {
    // timeout: wait for another process's write lock instead of failing with SQLITE_BUSY.
    db = new Database(path, { fileMustExist: exists, timeout: 5000 });
  } catch (err) {
    throw new RegistryError(`cannot open the registry ${path}: ${(err as Error).message}. ${LEAVE_IT}`);
  }
  try {
    check(db, path);
    db.pragma('journal_mode = WAL');
    // A registration answered to a client must survive a power cut.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db, path);
    // SQLite made the -wal and -shm just now with the file's mode; check all the same.
    for (const n of fixRegistryModes(path)) note(n);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

function check(db: Database.Database, path: string): void {
  let problems: string[];
  try {
    problems = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
  } catch (err) {
    throw new RegistryError(`the registry ${path} is unreadable or corrupt (${(err as Error).message}). ${LEAVE_IT}`);
  }
  if (problems.length !== 1 || problems[0] !== 'ok') {
    const shown = problems.slice(0, 3).join('; ');
    throw new RegistryError(`the registry ${path} failed SQLite's integrity check (${shown}). ${LEAVE_IT}`);
  }
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const objects = (db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number }).n;
  const foreign = appId !== 0 ? appId !== APPLICATION_ID : version !== 0 || objects !== 0;
  if (foreign) {
    throw new RegistryError(`${path} is an SQLite database of some other program, not a wirecagesrv registry. ${LEAVE_IT}`);
  }
}
