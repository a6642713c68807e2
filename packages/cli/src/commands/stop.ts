import { Args, Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';

export default class Stop extends WirecageCommand {
  static override summary = 'End a named cage: SIGTERM to every process in it, SIGKILL after --timeout.';
  static override description = `Asks the cage's control socket (only the user who started the cage may)
to send SIGTERM to every process in the cage, and SIGKILL to those left
after --timeout seconds; returns once none is left and the tunnel is down.
\`wirecage run --name\` then exits with its first command's status.

Exit status: 0 when the cage is gone; 1 when there is no such cage or it
refused.`;
  static override examples = ['<%= config.bin %> stop work', '<%= config.bin %> stop work --timeout 2'];
  static override args = { name: Args.string({ description: "The cage's name (wirecage ps lists them).", required: true }) };
  static override flags = {
    timeout: Flags.integer({ summary: 'Seconds between SIGTERM and SIGKILL.', default: 10, min: 0, max: 3600 }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Stop);
    const [{ checkCageName }, { controlRequest }, { namedCageFile, runtimeDir }] = await Promise.all([
      import('../cage/named.js'),
      import('../cage/control.js'),
      import('../cage/runtime-dir.js'),
    ]);
    const name = checkCageName(args.name);
    const { reply, socket } = await controlRequest(namedCageFile(runtimeDir(), name, 'ctl'), name, { op: 'stop', timeout: flags.timeout });
    if (!reply.ok) {
      socket.destroy();
      throw new WirecageError(`${name}: ${reply.error}`);
    }
    // The connection ends when stage 2 exits, after the tunnel's cleanup.
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.resume();
    });
  }
}
