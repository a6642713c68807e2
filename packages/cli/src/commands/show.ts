import { Args, Command } from '@oclif/core';
import { uapiRequest } from '@wirecage/wg-engine';
import { listCages, runtimeDir } from '../cage/runtime-dir.js';
import { formatUapiShow } from '../show-format.js';

export default class Show extends Command {
  static override summary = 'Show the tunnel state of running cages, like `wg show`.';
  static override description = `Reads the engine's UAPI socket of each cage this user runs (under
$XDG_RUNTIME_DIR/wirecage, /run/user/UID/wirecage or /run/wirecage for root).
Keys other than public ones are never printed.`;
  static override args = { tun: Args.string({ description: 'The cage\'s tunnel name (default: every running cage).' }) };

  async run(): Promise<void> {
    const { args } = await this.parse(Show);
    const dir = runtimeDir();
    const cages = listCages(dir).filter((c) => !args.tun || c.tun === args.tun);
    if (cages.length === 0) {
      if (args.tun) this.error(`no running cage with tunnel ${args.tun} (looked in ${dir})`, { exit: 1 });
      return;
    }
    const out: string[] = [];
    for (const cage of cages) {
      let text: string;
      try {
        text = await uapiRequest(cage.socket, 'get=1\n\n');
      } catch (err) {
        this.error(`cannot read cage ${cage.tun} (pid ${cage.pid}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { exit: 1 });
      }
      out.push(formatUapiShow(`${cage.tun} (cage pid ${cage.pid})`, text, Date.now()));
    }
    process.stdout.write(out.join('\n'));
  }
}
