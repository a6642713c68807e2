import { Command } from '@oclif/core';
import { loadServers } from '../servers/config.js';

export default class Servers extends Command {
  static override summary = 'List the servers added with `wirecage add-server` (names and URLs, never tokens).';
  static override description = `Exit status: 0 on success, 1 when config.toml cannot be read.`;
  static override examples = ['<%= config.bin %> servers'];

  async run(): Promise<void> {
    await this.parse(Servers);
    try {
      const { servers } = loadServers();
      const width = Math.max(0, ...[...servers.keys()].map((n) => n.length));
      for (const [name, s] of servers) process.stdout.write(`${name.padEnd(width)}  ${s.apiUrl}\n`);
    } catch (err) {
      process.stderr.write(`wirecage: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
