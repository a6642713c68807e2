import { WirecageCommand } from '../command.js';
import { keyToBase64, parseKeyBase64, publicKeyOf } from '@wirecage/wg-engine';

export default class Pubkey extends WirecageCommand {
  static override summary = 'Print the public key of a private key read from stdin (like `wg pubkey`).';
  static override description = `Reads one base64 private key from stdin (surrounding whitespace is ignored)
and prints its public key. The input is never echoed, also not in errors.

Exit status: 0 on success, 1 when stdin does not hold a WireGuard key.`;
  static override examples = ['<%= config.bin %> pubkey < work.key', '<%= config.bin %> keygen | tee work.key | <%= config.bin %> pubkey'];

  async run(): Promise<void> {
    await this.parse(Pubkey);
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const key = parseKeyBase64(Buffer.concat(chunks).toString('utf8'), 'the private key on stdin');
    process.stdout.write(`${keyToBase64(publicKeyOf(key))}\n`);
  }
}
