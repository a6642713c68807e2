import { Flags } from '@oclif/core';
import { WirecageCommand } from '../../command.js';
import { parseTunnelFlags, tunnelConfig, tunnelConfigText, tunnelFlagDefs } from '../../config/from-flags.js';

export default class ConfigFromFlags extends WirecageCommand {
  static override summary = "Write the earlier wirecage's --wg-* flags as a wg-quick file, on stdout.";
  static override description = `Takes the tunnel flags of the earlier wirecage (also accepted by
\`wirecage run\`) and prints the wg-quick file \`wirecage run -c FILE\` reads to
build the same tunnel: one [Peer] with AllowedIPs 0.0.0.0/0 (and ::/0 when
an IPv6 address is given), DNS from --dns, else 1.1.1.1 through the tunnel.

The private key is not copied: the file says PrivateKeyFile = FILE (and
PresharedKeyFile for --wg-psk-file), a wirecage extension that wg-quick does
not know. The key files are read now, and must be 0600 or stricter.

Exit status: 0 when the file was written, 1 when a flag is wrong or a key
file cannot be used (the message names the flag).`;
  static override examples = [
    '<%= config.bin %> config from-flags --wg-public-key KEY --wg-private-key-file ~/.config/wirecage/work.key --wg-endpoint vpn.example.org:51820 --wg-address 10.64.0.2/32 > work.conf',
  ];
  static override usage = [
    'config from-flags --wg-public-key KEY --wg-private-key-file FILE --wg-endpoint HOST:PORT --wg-address IP[/LEN]... [--wg-psk-file FILE] [--dns IP...] [--no-dns-override]',
  ];
  static override flags = {
    ...tunnelFlagDefs,
    dns: Flags.string({
      summary: 'DNS server for the cage (repeatable); default 1.1.1.1 through the tunnel.',
      helpValue: 'IP',
      multiple: true,
    }),
    'dns-override': Flags.boolean({
      summary: "Write DNS = (--no-dns-override: none; the cage keeps the host's resolvers).",
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ConfigFromFlags);
    const tunnel = parseTunnelFlags(flags);
    tunnelConfig(tunnel); // the key files must be usable before a file points to them
    process.stdout.write(tunnelConfigText(tunnel));
  }
}
