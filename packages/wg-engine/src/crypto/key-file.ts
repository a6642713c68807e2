// Files that hold a private key (key files, wg-quick configs).
//
// Writing: a temp file is created in the target's directory with O_EXCL and
// mode 0600, written, fsynced, then renamed (or hard-linked, when an existing
// file must not be replaced) over the target, and the directory is fsynced.
// So a key is never visible half-written or with looser permissions, and a
// failure leaves neither a partial target nor the temp file behind.
//
// Reading: a file that group or others may read is used, with a warning, as
// wg-quick does. Refusing (as ssh does) would lock users out of configs their
// VPN provider shipped 0644 for no gain at that point: the key has already
// been exposed, and the warning says how to stop it.
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseKeyBase64 } from './keys.js';

export class SecretFileError extends Error {
  override name = 'SecretFileError';
  constructor(
    message: string,
    readonly path: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface WriteSecretOptions {
  /** Replace an existing file (default true); with false an existing file fails with code EEXIST, untouched. */
  overwrite?: boolean;
}

export function writeSecretFileAtomic(path: string, content: string, opts: WriteSecretOptions = {}): void {
  const dir = dirname(path);
  let tmp: string | undefined;
  let fd: number | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A recursive mkdir says EEXIST when a file stands where a directory should be.
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way' : (code ?? (err as Error).message);
    throw new SecretFileError(`cannot create the directory ${dir}: ${why}`, path, code);
  }
  try {
    const tmpPath = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    fd = openSync(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    tmp = tmpPath;
    writeFileSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (opts.overwrite === false) {
      // link(2) fails with EEXIST instead of replacing: no window between a check and the write.
      linkSync(tmp, path);
      rmSync(tmp);
    } else {
      renameSync(tmp, path);
    }
    tmp = undefined;
    syncDir(dir);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    if (tmp !== undefined) rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && opts.overwrite === false) throw new SecretFileError(`${path} already exists`, path, code);
    throw new SecretFileError(`cannot write ${path}: ${code ?? (err as Error).message}`, path, code);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface SecretText {
  text: string;
  /** Set when a regular file is readable or writable by group or others; says how to fix it. */
  warning: string | null;
}

/** Reads a file holding a secret; the mode is checked on the opened file, not on the path. */
export function readSecretFile(path: string): SecretText {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SecretFileError(`cannot read ${path}: ${code ?? (err as Error).message}`, path, code);
  }
  try {
    const st = fstatSync(fd);
    const loose = st.isFile() && (st.mode & 0o077) !== 0;
    const warning = loose
      ? `${path} holds a private key but is accessible to others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${path}`
      : null;
    return { text: readFileSync(fd, 'utf8'), warning };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SecretFileError(`cannot read ${path}: ${code ?? (err as Error).message}`, path, code);
  } finally {
    closeSync(fd);
  }
}

/** A key file as `wirecage keygen --out` writes it: one base64 key. The content is never quoted in errors. */
export function readKeyFile(path: string): { key: Buffer; warning: string | null } {
  const { text, warning } = readSecretFile(path);
  try {
    return { key: parseKeyBase64(text, path), warning };
  } catch {
    throw new SecretFileError(`${path} does not hold a WireGuard key (44 base64 characters, as \`wirecage keygen\` writes)`, path);
  }
}
