import { rmSync } from 'node:fs';
import { Args } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';
import { caFileEntryFor, isServerName, loadServers, resolveCaFile, saveServers } from '../servers/config.js';

export default class RemoveServer extends WirecageCommand {
  static override summary = 'Forget a server added with `wirecage add-server`.';
  static override description = `Removes NAME from config.toml, and the copy of its CA that add-server
--ca-file made. Its client key (keys/NAME.key) is kept, so adding the server
again under the same name keeps the same address.

Exit status: 0 on success, 1 when NAME is unknown or the config cannot be read.`;
  static override examples = ['<%= config.bin %> remove-server work'];
  static override args = { name: Args.string({ description: 'Server name', required: true }) };

  async run(): Promise<void> {
    const { args } = await this.parse(RemoveServer);
    const cfg = loadServers();
    const entry = cfg.servers.get(args.name);
    if (!entry) throw new WirecageError(`no server named "${args.name}" in ${cfg.file}`);
    cfg.servers.delete(args.name);
    saveServers(cfg);
    // Only the copy add-server made: a ca_file written by hand is the user's own file.
    if (isServerName(args.name) && entry.caFile === caFileEntryFor(args.name))
      rmSync(resolveCaFile(cfg.file, entry.caFile), { force: true });
    process.stdout.write(`removed ${args.name}\n`);
  }
}
