import { Args, Command } from '@oclif/core';
import { keyToBase64, parseKeyBase64 } from '@wirecage/wg-engine';
import { AdminClient, adminFlags, adoptAdminLegacyEnv, usage } from '../../api/admin-client.js';

export default class PeersRemove extends Command {
  static override summary = 'Remove a peer from a running server.';
  static override description =
    [
      'Asks the API of a running `wirecagesrv up` (DELETE /v1/register, with the admin token) to forget the peer:',
      'it leaves the registry and the WireGuard device at once (its handshakes are refused from then on), its port forwards',
      'are closed with every connection through them, its flows through the NAT are cut, and its addresses go back to the pool.',
      'The key may register again.',
    ].join(' ') +
    '\n\nExit status: 0 on success, 1 when the server cannot be reached or refuses (an unknown key, for one), 2 for a usage error.';
  static override examples = [
    '<%= config.bin %> peers remove --admin-token-file /etc/wirecagesrv/admin-token xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  ];
  static override args = {
    key: Args.string({ required: true, description: "The peer's base64 public key, as `peers list` shows it." }),
  };
  static override flags = { ...adminFlags };

  async run(): Promise<void> {
    adoptAdminLegacyEnv();
    const { args, flags } = await this.parse(PeersRemove);
    let key: string;
    try {
      key = keyToBase64(parseKeyBase64(args.key, 'KEY'));
    } catch (err) {
      return usage((err as Error).message);
    }
    const client = AdminClient.fromFlags(flags);
    await client.request('DELETE', '/v1/register', { client_public_key: key }, `remove the peer ${key}`);
    process.stdout.write(`removed ${key}\n`);
  }
}
