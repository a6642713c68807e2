import { Command } from '@oclif/core';
import { AdminClient, adminFlags, adoptAdminLegacyEnv } from '../api/admin-client.js';

export default class Reload extends Command {
  static override summary = 'Make a running server read its TLS certificate and key and its token files again.';
  static override description =
    [
      'Asks the API of a running `wirecagesrv up` (POST /v1/reload, with the admin token) to do what SIGHUP does: read the TLS certificate',
      'and key, the registration and admin token files (or the credentials they came from) again and serve them from now on.',
      'NAT flows, WireGuard sessions and port forwards carry on. All files are checked first: when one cannot serve (a certificate',
      'that does not parse, a key of another certificate, an unreadable or empty token file) nothing changes and the reason is printed.',
      'Flags and environment variables are read at start only: changing them needs a restart.',
    ].join(' ') +
    '\n\nExit status: 0 when reloaded, 1 when the server cannot be reached or refuses (its reason is printed), 2 for a usage error.';
  static override examples = [
    '<%= config.bin %> reload --admin-token-file /etc/wirecagesrv/admin-token',
    '<%= config.bin %> reload --api https://vpn.example.com:8443 --ca-file /etc/wirecagesrv/ca.pem --admin-token-file /etc/wirecagesrv/admin-token',
  ];
  static override flags = { ...adminFlags };

  async run(): Promise<void> {
    adoptAdminLegacyEnv();
    const { flags } = await this.parse(Reload);
    const client = AdminClient.fromFlags(flags);
    const answer = await client.request('POST', '/v1/reload', undefined, 'reload');
    const list = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v.join(', ') : 'nothing');
    process.stdout.write(`reloaded: ${list(answer.reloaded)}; changed: ${list(answer.changed)}\n`);
    for (const n of Array.isArray(answer.not_reloaded) ? answer.not_reloaded : []) process.stdout.write(`not reloaded: ${String(n)}\n`);
  }
}
