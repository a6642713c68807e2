// Reading a wg-quick file from disk: the file holds a private key, so it is
// read as a secret (mode checked on the open file) before it is parsed.
import { readSecretFile } from '@wirecage/wg-engine/config';
import { parseWgQuick, type WgQuickConfig } from './wg-quick.js';

export interface LoadedConfig {
  config: WgQuickConfig;
  /** How to tighten a config file others can read, or null. */
  warning: string | null;
}

/** Throws SecretFileError when the file cannot be read, ConfigError when it is wrong. Errors name `path` as given. */
export function loadWgQuick(path: string): LoadedConfig {
  const { text, warning } = readSecretFile(path);
  const config = parseWgQuick(text, path);
  // With PrivateKeyFile (and PresharedKeyFile for every preshared key) the file holds no secret: its mode does not matter.
  const holdsKey = !config.interface.privateKeyFile || config.peers.some((p) => p.presharedKey && !p.presharedKeyFile);
  return { config, warning: holdsKey ? warning : null };
}
