import { Command } from '@oclif/core';
import { keyToBase64, parseKeyBase64, publicKeyOf } from '@wirecage/wg-engine';

export default class Pubkey extends Command {
  static override summary = 'Print the public key of a private key read from stdin (like `wg pubkey`).';
  static override examples = ['<%= config.bin %> keygen | tee work.key | <%= config.bin %> pubkey'];

  async run(): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    let key: Buffer;
    try {
      key = parseKeyBase64(Buffer.concat(chunks).toString('utf8'), 'the private key on stdin');
    } catch (err) {
      this.error((err as Error).message, { exit: 1 });
    }
    process.stdout.write(`${keyToBase64(publicKeyOf(key))}\n`);
  }
}
