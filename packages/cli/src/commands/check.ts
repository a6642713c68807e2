import { Args, Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { formatCidr, formatIp, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import { loadWgQuick } from '../config/load.js';
import { summarizeConfig } from '../config/summary.js';
import { formatHostPort } from '@wirecage/wg-engine/config';
import type { WgQuickConfig } from '../config/wg-quick.js';

export default class Check extends WirecageCommand {
  static override summary = 'Check a wg-quick configuration file and print what wirecage would use.';
  static override description = `Parses FILE as \`wirecage run\` would, without resolving names or touching
any namespace, and prints the interface addresses, DNS and each peer's public
key, endpoint and allowed IPs, in the words of \`wg show\`. The private and
preshared keys are never printed. --json prints the same as one object
(file, publicKey, privateKeyFile, addresses, dns, search, mtu, listenPort,
peers with publicKey, presharedKey "(hidden)" or null, presharedKeyFile,
endpoint, allowedIps, persistentKeepalive); absent values are null.

Exit status: 0 when the file is valid, 1 when it cannot be read or is wrong
(the message names file:line: Key). A file that others can read is valid but
draws a warning on stderr.`;
  static override examples = ['<%= config.bin %> check work.conf', '<%= config.bin %> check work.conf --json'];
  static override args = { file: Args.string({ description: 'The wg-quick configuration file.', required: true }) };
  static override flags = {
    json: Flags.boolean({ summary: 'Print the summary as a JSON object instead of text (no private or preshared key).' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Check);
    const loaded = loadWgQuick(args.file);
    if (loaded.warning) process.stderr.write(`wirecage: warning: ${loaded.warning}\n`);
    process.stdout.write(flags.json ? `${JSON.stringify(configJson(loaded.config), null, 2)}\n` : summarizeConfig(loaded.config));
  }
}

/** The public parts of a config, as `check --json` prints them. */
function configJson(cfg: WgQuickConfig) {
  const i = cfg.interface;
  return {
    file: cfg.file,
    publicKey: keyToBase64(publicKeyOf(i.privateKey)),
    privateKeyFile: i.privateKeyFile ?? null,
    addresses: i.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
    dns: i.dns.servers,
    search: i.dns.search,
    mtu: i.mtu ?? null,
    listenPort: i.listenPort ?? null,
    peers: cfg.peers.map((p) => ({
      publicKey: keyToBase64(p.publicKey),
      presharedKey: p.presharedKey ? '(hidden)' : null,
      presharedKeyFile: p.presharedKeyFile ?? null,
      endpoint: p.endpoint ? formatHostPort(p.endpoint) : null,
      allowedIps: p.allowedIps.map(formatCidr),
      persistentKeepalive: p.persistentKeepalive ?? null,
    })),
  };
}
