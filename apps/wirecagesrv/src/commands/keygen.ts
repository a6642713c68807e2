import { Command, Flags } from '@oclif/core';
import { generatePrivateKey, keyToBase64, publicKeyOf, SecretFileError, writeSecretFileAtomic } from '@wirecage/wg-engine';
import { fail } from '../fail.js';

export default class Keygen extends Command {
  static override summary = 'Generate a WireGuard private key for the server.';
  static override description =
    'Prints a new base64 private key, or with --out writes it to a file created 0600 atomically and prints only the public key.';
  static override examples = ['<%= config.bin %> keygen --out /etc/wirecagesrv/private.key'];
  static override flags = {
    out: Flags.string({ char: 'o', summary: 'Write the key to this file (mode 0600, atomically) instead of stdout.' }),
    force: Flags.boolean({ summary: 'With --out, replace an existing key file (the key it holds is lost).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Keygen);
    const key = generatePrivateKey();
    if (flags.out) {
      try {
        writeSecretFileAtomic(flags.out, `${keyToBase64(key)}\n`, { overwrite: flags.force === true });
      } catch (err) {
        key.fill(0);
        if (err instanceof SecretFileError && err.code === 'EEXIST')
          fail(`${flags.out} already exists; pass --force to replace it (the key it holds is lost)`);
        fail(`cannot write ${flags.out}: ${(err as Error).message}`);
      }
      process.stdout.write(`public key: ${keyToBase64(publicKeyOf(key))}\n`);
    } else {
      process.stdout.write(`${keyToBase64(key)}\n`);
    }
    key.fill(0);
  }
}
