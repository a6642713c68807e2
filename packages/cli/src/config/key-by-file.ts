// Keys named by path: PrivateKeyFile / PresharedKeyFile in a wg-quick file,
// --wg-private-key-file / --wg-psk-file on the command line.
//
// A wg-quick file others can read is used with a warning (wg-engine's
// key-file.ts says why: providers ship them 0644). A key file is refused
// instead: it holds nothing but the key, the user made it and named it, so
// there is no one else's default to be lenient about.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { parseKeyBase64 } from '@wirecage/wg-engine/config';
import { WirecageError } from '../errors.js';

/** Why a key file cannot be used; callers prefix the flag or the file:line: Key that named it. */
export class KeyFileError extends WirecageError {
  override name = 'KeyFileError';
}

const MADE_BY = { 'private key': '`wirecage keygen --out` or `wg genkey`', 'preshared key': '`wg genpsk`' } as const;

/** Reads a base64 key from `path`, a file of mode 0600 or stricter (checked on the open file); the key is never quoted. */
export function readKeyByFile(path: string, what: keyof typeof MADE_BY): Buffer {
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY);
    const st = fstatSync(fd);
    // A pipe (`<(pass show wg)`) or a device has no file mode worth checking.
    if (st.isFile() && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new KeyFileError(
        `${path} holds a ${what} that others may read or change (mode ${mode}); a key file must be 0600 or stricter: chmod 600 ${path}`,
      );
    }
    text = readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof KeyFileError) throw err;
    throw new KeyFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  try {
    return parseKeyBase64(text);
  } catch {
    throw new KeyFileError(`${path} does not hold a WireGuard ${what} (44 base64 characters, as ${MADE_BY[what]} writes)`);
  }
}
