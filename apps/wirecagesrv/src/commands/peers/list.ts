import { Command, Flags } from '@oclif/core';
import { AdminClient, adminFlags, adoptAdminLegacyEnv } from '../../api/admin-client.js';
import type { PeerResponse } from '../../api/peers.js';
import { fail } from '../../fail.js';

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
        time(p.last_seen),
        p.last_endpoint ?? '-',
        time(p.created_at),
        time(p.lease_expires),
      ]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) process.stdout.write(`${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}\n`);
  }
}

/** "2030-01-02 03:04:05Z" (UTC, to the second), or "-". */
function time(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}
