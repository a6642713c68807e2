// The server's private key: from WIRECAGESRV_PRIVATE_KEY_B64 or --private-key-file, else
// server.key next to the state file, generated there on the first start.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  generatePrivateKey,
  keyToBase64,
  parseKeyBase64,
  readKeyFile,
  SecretFileError,
  writeSecretFileAtomic,
  type Logger,
} from '@wirecage/wg-engine';
import { fail } from '../fail.js';
import { usage } from '../api/admin-client.js';
import { envName } from '../env.js';

export function loadPrivateKey(keyB64: string | undefined, keyFile: string | undefined, statePath: string, log: Logger): Buffer {
  const variable = envName('private-key-b64');
  if (keyB64 !== undefined && keyFile) usage(`give the private key once: --private-key-file or ${variable}, not both`);
  try {
    if (keyB64 !== undefined) return parseKeyBase64(keyB64, variable);
    const file = keyFile ?? join(dirname(statePath), 'server.key');
    if (!keyFile && !existsSync(file)) generateKeyFile(file, log);
    const k = readKeyFile(file);
    if (k.warning) log.warn(k.warning);
    return k.key;
  } catch (err) {
    return fail((err as Error).message);
  }
}

function generateKeyFile(file: string, log: Logger): void {
  const fresh = generatePrivateKey();
  try {
    writeSecretFileAtomic(file, `${keyToBase64(fresh)}\n`, { overwrite: false });
    log.info(`generated a server private key in ${file}`);
  } catch (err) {
    // Another start made it first: use that one.
    if (!(err instanceof SecretFileError && err.code === 'EEXIST')) throw err;
  } finally {
    fresh.fill(0);
  }
}
