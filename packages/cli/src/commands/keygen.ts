import { Command, Flags } from '@oclif/core';
import { generatePrivateKey, keyToBase64 } from '@wirecage/wg-engine';
import { writeSecretFileAtomic } from '../keyfile.js';

export default class Keygen extends Command {
  static override summary = 'Generate a WireGuard private key (like `wg genkey`).';
  static override description = 'Prints a new base64 private key, or with --out writes it to a file created 0600 atomically.';
  static override examples = ['<%= config.bin %> keygen > work.key', '<%= config.bin %> keygen --out ~/.config/wirecage/work.key'];
  static override flags = {
    out: Flags.string({ char: 'o', summary: 'Write the key to this file (mode 0600, atomically) instead of stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Keygen);
    const key = keyToBase64(generatePrivateKey());
    if (flags.out) writeSecretFileAtomic(flags.out, `${key}\n`);
    else process.stdout.write(`${key}\n`);
  }
}
