// The server's private key on disk. Key files are created 0600 atomically (a
// temp file with mode 0600 in the same directory, fsynced, then renamed), so
// a key is never visible half-written or with looser permissions.
// The same routine exists in packages/cli (keyfile.ts); an app may not depend
// on the cli package, so it is written again here rather than shared.
import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseKeyBase64 } from '@wirecage/wg-engine';

export class SecretFileExistsError extends Error {
  override name = 'SecretFileExistsError';
}

/**
 * Writes content to path, mode 0600, atomically. Without replace, an existing
 * file is kept and SecretFileExistsError thrown (link() refuses to clobber,
 * so two writers cannot both win).
 */
export function writeSecretFileAtomic(path: string, content: string, opts: { replace?: boolean } = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  let open = true;
  try {
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    if (opts.replace) {
      renameSync(tmp, path);
    } else {
      try {
        linkSync(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SecretFileExistsError(`${path} already exists`);
        throw err;
      }
      rmSync(tmp);
    }
  } catch (err) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface KeyFile {
  key: Buffer;
  /** Set when the file is readable or writable by group or others. */
  warning?: string;
}

/** Reads a base64 private key file (as `wg genkey` writes it). Errors name the file, never its content. */
export function readPrivateKeyFile(path: string): KeyFile {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the private key file ${path}: ${(err as Error).message}`);
  }
  const key = parseKeyBase64(text, `the private key file ${path}`);
  const loose = mode & 0o077;
  return loose ? { key, warning: `${path} is accessible to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it` } : { key };
}
