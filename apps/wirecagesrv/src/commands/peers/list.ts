import { Command, Flags } from '@oclif/core';
import { AdminClient, adminFlags, adoptAdminLegacyEnv } from '../../api/admin-client.js';
import type { PeerResponse } from '../../api/peers.js';
import { fail } from '../../fail.js';
import { printTable, utcSecond } from '../../table.js';

export default class PeersList extends Command {
  static override summary = 'List the peers registered with a running server.';
  static override description =
    [
      'Asks the API of a running `wirecagesrv up` (GET /v1/peers, with the admin token) for every registered peer:',
      'its public key, tunnel addresses, port forwards, last handshake and where it came from, when it registered and when its lease ends',
      '(it is removed then unless it registers again or completes a handshake).',
    ].join(' ') +
    '\n\nExit status: 0 on success, 1 when the server cannot be reached or refuses (its reason is printed), 2 for a usage error.';
  static override examples = [
    '<%= config.bin %> peers list --admin-token-file /etc/wirecagesrv/admin-token',
    'WIRECAGESRV_ADMIN_TOKEN_FILE=/etc/wirecagesrv/admin-token <%= config.bin %> peers list --api https://vpn.example.com:8443 --json',
  ];
  static override flags = {
    ...adminFlags,
    json: Flags.boolean({ summary: "Print the peers as a JSON array (the API's own fields) instead of a table." }),
  };

  async run(): Promise<void> {
    adoptAdminLegacyEnv();
    const { flags } = await this.parse(PeersList);
    const client = AdminClient.fromFlags(flags);
    const answer = await client.request('GET', '/v1/peers', undefined, 'list the peers');
    if (!Array.isArray(answer.peers)) fail(`${client.url('/v1/peers')}: the answer has no "peers" list (is --api a wirecagesrv API?)`);
    const peers = answer.peers as PeerResponse[];
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(peers, null, 2)}\n`);
      return;
    }
    if (peers.length === 0) {
      process.stdout.write('no peers are registered\n');
      return;
    }
    const rows = [
      ['PUBLIC KEY', 'ADDRESS', 'ADDRESS6', 'FORWARDS', 'LAST HANDSHAKE', 'ENDPOINT', 'REGISTERED', 'LEASE EXPIRES'],
      ...peers.map((p) => [
        p.client_public_key,
        p.client_address,
        p.client_address6,
        String(p.forwards),
        utcSecond(p.last_seen),
        p.last_endpoint ?? '-',
        utcSecond(p.created_at),
        utcSecond(p.lease_expires),
      ]),
    ];
    printTable(rows);
  }
}
