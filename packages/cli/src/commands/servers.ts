import { Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { loadServers } from '../servers/config.js';

export default class Servers extends WirecageCommand {
  static override summary = 'List the servers added with `wirecage add-server` (names and URLs, never tokens).';
  static override description = `--json prints an array of {"name", "url"} objects.

Exit status: 0 on success, 1 when config.toml cannot be read.`;
  static override examples = ['<%= config.bin %> servers', '<%= config.bin %> servers --json'];
  static override flags = {
    json: Flags.boolean({ summary: 'Print the servers as a JSON array of {name, url} (never tokens).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Servers);
    const { servers } = loadServers();
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify(
          [...servers].map(([name, s]) => ({ name, url: s.apiUrl })),
          null,
          2,
        )}\n`,
      );
      return;
    }
    const width = Math.max(0, ...[...servers.keys()].map((n) => n.length));
    for (const [name, s] of servers) process.stdout.write(`${name.padEnd(width)}  ${s.apiUrl}\n`);
  }
}
