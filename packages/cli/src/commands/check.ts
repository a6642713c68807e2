import { Args, Command } from '@oclif/core';
import { loadWgQuick } from '../config/load.js';
import { summarizeConfig } from '../config/summary.js';

export default class Check extends Command {
  static override summary = 'Check a wg-quick configuration file and print what wirecage would use.';
  static override description = `Parses FILE as \`wirecage run\` would, without resolving names or touching
any namespace, and prints the interface addresses, DNS and each peer's public
key, endpoint and allowed IPs, in the words of \`wg show\`. The private and
preshared keys are never printed.

Exit status: 0 when the file is valid, 1 when it cannot be read or is wrong
(the message names file:line: Key). A file that others can read is valid but
draws a warning on stderr.`;
  static override examples = ['<%= config.bin %> check work.conf'];
  static override args = { file: Args.string({ description: 'The wg-quick configuration file.', required: true }) };

  async run(): Promise<void> {
    const { args } = await this.parse(Check);
    let loaded;
    try {
      loaded = loadWgQuick(args.file);
    } catch (err) {
      if (!['ConfigError', 'SecretFileError'].includes((err as Error).name)) throw err;
      process.stderr.write(`wirecage: ${(err as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    if (loaded.warning) process.stderr.write(`wirecage: warning: ${loaded.warning}\n`);
    process.stdout.write(summarizeConfig(loaded.config));
  }
}
