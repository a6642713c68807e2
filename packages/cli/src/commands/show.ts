import { Args, Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';
import { readCageUapi } from '../cage/cage-uapi.js';
import { listCages, runtimeDir } from '../cage/runtime-dir.js';
import { healthFile, readHealth } from '../cage/health-file.js';
import { formatShow, withHealth } from '../show-format.js';

export default class Show extends WirecageCommand {
  static override summary = 'Show the tunnel state of running cages, like `wg show`.';
  static override description = `Reads the engine's UAPI socket of each cage this user runs (under
$XDG_RUNTIME_DIR/wirecage, /run/user/UID/wirecage or /run/wirecage for root).
Keys other than public ones are never printed. --json prints an array, one
object per cage: tun, pid, publicKey, listenPort and peers (publicKey,
presharedKey "(hidden)" or null, endpoint, allowedIps, latestHandshake in
Unix seconds or null, rxBytes, txBytes, persistentKeepalive, and, from the
tunnel's healing, state "up" or "handshaking", upSince in Unix seconds or
null, lastError or null).

Exit status: 0 on success, 1 when TUN is not running or a cage cannot be read.`;
  static override examples = ['<%= config.bin %> show', '<%= config.bin %> show wirecage --json'];
  static override args = { tun: Args.string({ description: "The cage's tunnel name (default: every running cage)." }) };
  static override flags = {
    json: Flags.boolean({ summary: 'Print the cages as a JSON array instead of text (no private or preshared key).' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Show);
    const dir = runtimeDir();
    const cages = listCages(dir).filter((c) => !args.tun || c.tun === args.tun);
    if (cages.length === 0 && args.tun) throw new WirecageError(`no running cage with tunnel ${args.tun} (looked in ${dir})`);
    const shown = [];
    for (const cage of cages) {
      const iface = await readCageUapi(cage);
      // The healing state is kept in a file next to the socket (cage/health-file.ts); a cage without one shows none.
      const health = readHealth(healthFile(dir, cage.tun, cage.pid));
      shown.push({ tun: cage.tun, pid: cage.pid, ...(health ? withHealth(iface, health.peers) : iface) });
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      return;
    }
    const now = Date.now();
    process.stdout.write(shown.map((c) => formatShow(`${c.tun} (cage pid ${c.pid})`, c, now)).join('\n'));
  }
}
