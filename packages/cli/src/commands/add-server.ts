import { Args, Command, Flags } from '@oclif/core';
import { checkApiUrl, isServerName, loadServers, saveServers } from '../servers/config.js';

export default class AddServer extends Command {
  static override summary = 'Remember a wirecagesrv server under a name, for `wirecage run NAME`.';
  static override description = `Writes NAME, the API URL and the registration token to
$XDG_CONFIG_HOME/wirecage/config.toml (~/.config/wirecage/config.toml), mode
0600, atomically. An existing NAME is replaced. Nothing is sent to the server
until the first \`wirecage run NAME\`.

Exit status: 0 on success, 1 on a bad name or URL, or an unreadable config.`;
  static override examples = ['<%= config.bin %> add-server work https://vpn.example.com:8443 --token "$(cat token)"'];
  static override args = {
    name: Args.string({ description: 'Server name: 1 to 32 of A-Z a-z 0-9 _ -', required: true }),
    url: Args.string({ description: 'API URL of wirecagesrv (http:// or https://)', required: true }),
  };
  static override flags = {
    token: Flags.string({ summary: 'Registration token of the server.', env: 'WIRECAGE_TOKEN', helpValue: 'TOKEN' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AddServer);
    try {
      if (!isServerName(args.name)) throw new Error(`server name "${args.name}" is not valid: use 1 to 32 of A-Z a-z 0-9 _ -`);
      const apiUrl = checkApiUrl(args.url);
      const cfg = loadServers();
      const replaced = cfg.servers.has(args.name);
      cfg.servers.set(args.name, { apiUrl, token: flags.token ?? '' });
      saveServers(cfg);
      process.stdout.write(`${replaced ? 'replaced' : 'added'} ${args.name} (${apiUrl}) in ${cfg.file}\n`);
    } catch (err) {
      process.stderr.write(`wirecage: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
