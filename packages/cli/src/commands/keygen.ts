import { Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';
import { generatePrivateKey, keyToBase64 } from '@wirecage/wg-engine';
import { SecretFileError, writeSecretFileAtomic } from '@wirecage/wg-engine';

export default class Keygen extends WirecageCommand {
  static override summary = 'Generate a WireGuard private key (like `wg genkey`).';
  static override description = `Prints a new base64 private key on stdout. With --out, writes it to FILE
instead: created with mode 0600 (its directory 0700 when created), atomically,
so the key is never readable by others nor visible half-written. An existing
FILE is never replaced unless --force is given: the key it holds would be lost.

Exit status: 0 on success, 1 when FILE exists or cannot be written.`;
  static override examples = [
    '<%= config.bin %> keygen --out ~/.config/wirecage/work.key',
    '<%= config.bin %> keygen | tee work.key | <%= config.bin %> pubkey',
  ];
  static override flags = {
    out: Flags.string({ char: 'o', summary: 'Write the key to this file (mode 0600, atomically) instead of stdout.', helpValue: 'FILE' }),
    force: Flags.boolean({ char: 'f', summary: 'With --out, replace an existing file (its old key is lost).', dependsOn: ['out'] }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Keygen);
    const key = keyToBase64(generatePrivateKey());
    if (!flags.out) {
      process.stdout.write(`${key}\n`);
      return;
    }
    try {
      writeSecretFileAtomic(flags.out, `${key}\n`, { overwrite: flags.force === true });
    } catch (err) {
      if (!(err instanceof SecretFileError)) throw err;
      const hint = err.code === 'EEXIST' ? '; pass --force to replace it (the key it holds is lost)' : '';
      throw new WirecageError(`${err.message}${hint}`);
    }
  }
}
