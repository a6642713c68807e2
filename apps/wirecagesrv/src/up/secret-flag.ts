// A secret given either as a flag/variable or as a file (--X or --X-file):
// both at once is a usage error, an unreadable file a failure.
import { readFileSync } from 'node:fs';
import { fail } from '../fail.js';
import { usage } from '../api/admin-client.js';
import { envName } from '../env.js';

export interface SecretFlag {
  /** In messages: "token", "admin token". */
  what: string;
  /** The flag without dashes ("auth-token"); its file flag adds "-file". */
  flag: string;
}

/** The secret, trimmed when read from its file; undefined when given neither way. */
export function readSecretFlag(s: SecretFlag, value: string | undefined, file: string | undefined): string | undefined {
  if (value !== undefined && file)
    usage(`give the ${s.what} once: --${s.flag} (${envName(s.flag)}) or --${s.flag}-file (${envName(`${s.flag}-file`)}), not both`);
  if (!file) return value;
  try {
    return readSecretFile(file, s.what);
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** A secret's file, trimmed; an error naming the file when it cannot be read (at start, and on every reload). */
export function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the ${what} file ${file}: ${(err as Error).message}`, { cause: err });
  }
}
