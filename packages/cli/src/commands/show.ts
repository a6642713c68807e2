import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Args, Command } from '@oclif/core';
import { runtimeDir } from '../cage/runtime-dir.js';
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
    const names = args.tun
      ? [args.tun]
      : existsSync(dir)
        ? readdirSync(dir).filter((f) => f.endsWith('.sock')).map((f) => f.slice(0, -5))
        : [];
    if (names.length === 0) {
      if (args.tun) this.error(`no running cage with tunnel ${args.tun} (looked in ${dir})`, { exit: 1 });
      return;
    }
    const out: string[] = [];
    for (const name of names) {
      let text: string;
      try {
        text = await uapiGet(join(dir, `${name}.sock`));
      } catch (err) {
        this.error(`cannot read cage ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { exit: 1 });
      }
      out.push(formatUapiShow(name, text, Date.now()));
    }
    process.stdout.write(out.join('\n'));
  }
}

function uapiGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(path);
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.endsWith('\n\n')) {
        c.end();
        resolve(buf);
      }
    });
    c.on('error', reject);
    c.write('get=1\n\n');
  });
}
