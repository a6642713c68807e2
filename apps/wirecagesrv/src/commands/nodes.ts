import { Command, Flags } from '@oclif/core';
import { AdminClient, adminFlags, adoptAdminLegacyEnv } from '../api/admin-client.js';
import type { NodeResponse } from '../api/nodes.js';
import { fail } from '../fail.js';
import { printTable, utcSecond } from '../table.js';

export default class Nodes extends Command {
  static override summary = 'List the servers (nodes) sharing the registry of a running server.';
  static override description =
    [
      'Asks the API of a running `wirecagesrv up` (GET /v1/nodes, with the admin token) for the nodes of its fleet, as their heartbeats',
      "in the registry say: each node's name, the endpoint it tells clients, its API, when it started, its last heartbeat and how many",
      'peers hold their session with it. A node missing three heartbeats (15 s) is gone; --all lists those too. A server with a registry',
      'of its own (SQLite) lists itself.',
    ].join(' ') +
    '\n\nExit status: 0 on success, 1 when the server cannot be reached or refuses (its reason is printed), 2 for a usage error.';
  static override examples = [
    '<%= config.bin %> nodes --admin-token-file /etc/wirecagesrv/admin-token',
    'WIRECAGESRV_ADMIN_TOKEN_FILE=/etc/wirecagesrv/admin-token <%= config.bin %> nodes --api https://vpn.example.com:8443 --json',
  ];
  static override flags = {
    ...adminFlags,
    all: Flags.boolean({ summary: 'Also list the nodes whose heartbeats stopped (gone, or stopped without a clean exit).' }),
    json: Flags.boolean({ summary: "Print the nodes as a JSON array (the API's own fields) instead of a table." }),
  };

  async run(): Promise<void> {
    adoptAdminLegacyEnv();
    const { flags } = await this.parse(Nodes);
    const client = AdminClient.fromFlags(flags);
    const answer = await client.request('GET', '/v1/nodes', undefined, 'list the nodes');
    if (!Array.isArray(answer.nodes)) fail(`${client.url('/v1/nodes')}: the answer has no "nodes" list (is --api a wirecagesrv API?)`);
    const nodes = (answer.nodes as NodeResponse[]).filter((n) => flags.all || n.live);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(nodes, null, 2)}\n`);
      return;
    }
    if (nodes.length === 0) {
      process.stdout.write('no node is live\n');
      return;
    }
    const rows = [
      ['NAME', 'ENDPOINT', 'API', 'SESSIONS', 'STARTED', 'HEARTBEAT', 'LIVE'],
      ...nodes.map((n) => [
        n.name,
        n.endpoint,
        n.api,
        String(n.sessions),
        utcSecond(n.started_at),
        utcSecond(n.heartbeat),
        n.live ? 'yes' : 'no',
      ]),
    ];
    printTable(rows);
  }
}
