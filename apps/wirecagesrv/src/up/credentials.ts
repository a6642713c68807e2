// systemd's credentials (LoadCredential=): the unit copies the private key
// and the tokens into $CREDENTIALS_DIRECTORY, readable by the service alone
// and never in its environment or argv. A file there named private-key,
// auth-token, admin-token or registry-url (a fleet's database URL, password
// and all) stands in for the matching file flag when the secret was not
// given any other way.
import { statSync } from 'node:fs';
import { join } from 'node:path';

/** Credential name -> the file flag it stands in for, and the flags that give the same secret otherwise. */
export const CREDENTIALS = {
  'private-key': { fileFlag: 'private-key-file', others: ['private-key-b64'] },
  'auth-token': { fileFlag: 'auth-token-file', others: ['auth-token'] },
  'admin-token': { fileFlag: 'admin-token-file', others: ['admin-token'] },
  'registry-url': { fileFlag: 'registry-url-file', others: ['registry'] },
} as const;

export type CredentialFileFlag = (typeof CREDENTIALS)[keyof typeof CREDENTIALS]['fileFlag'];

/**
 * The file flags to fill in from $CREDENTIALS_DIRECTORY: for each credential file present there
 * whose secret none of `given` (flag names with a value, from argv or the environment) supplies.
 */
export function credentialFiles(
  given: (flag: string) => boolean,
  dir = process.env.CREDENTIALS_DIRECTORY,
): Partial<Record<CredentialFileFlag, string>> {
  const out: Partial<Record<CredentialFileFlag, string>> = {};
  if (!dir) return out;
  for (const [name, c] of Object.entries(CREDENTIALS)) {
    if (given(c.fileFlag) || c.others.some(given)) continue;
    const file = join(dir, name);
    // A missing one is no error: the unit loads only the credentials it was given.
    if (isFile(file)) out[c.fileFlag] = file;
  }
  return out;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
