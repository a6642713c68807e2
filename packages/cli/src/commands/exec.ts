import { Flags } from '@oclif/core';
import { flagsWithValues, splitCommand } from '../cage/argv.js';
import { EXIT_USAGE, EXIT_WIRECAGE_FAILED } from '../cage/spec.js';
import { WirecageCommand, isOclifError } from '../command.js';
import { WirecageError } from '../errors.js';

export default class Exec extends WirecageCommand {
  static override failureExit = EXIT_WIRECAGE_FAILED;
  static override summary = 'Run a command in a named cage (started with `wirecage run --name NAME`).';
  static override description = `The command joins the cage's network (the same tunnel and addresses), its
private /tmp, /run and hidden files, its processes and its user namespace,
as the cage's first command has them, with the same sealing (no capability,
no_new_privs). It runs with your terminal (a pseudo-terminal of its own when
stdin is one), in your working directory, with your environment less what
points to sockets the cage does not share. The cage lives at least as long
as the command. Only the user who started the cage can join it.

Exit status: the command's own; 128+N when signal N killed it; 125 when
wirecage fails (no such cage, refused, cannot join); 126 when the command
cannot be executed; 127 when it is not found; 2 for a command line it cannot
use.`;
  static override examples = [
    '<%= config.bin %> exec work -- firefox',
    '<%= config.bin %> exec work -- curl -s https://example.org',
    'sudo <%= config.bin %> exec work --user alice -- id',
  ];
  static override strict = false;
  static override usage = ['exec NAME [--user U] [--] COMMAND [ARGS...]'];
  static override flags = {
    user: Flags.string({
      summary:
        "Run the command as this user (name or uid): the user the cage's commands run as, the one id its seal maps (another is refused, 125); needs root.",
    }),
  };

  async run(): Promise<void> {
    // As `run`: oclif would drop the first `--` and reorder argv (TOOLCHAIN.md).
    const valued = flagsWithValues(Exec.flags);
    const first = splitCommand(this.argv, valued);
    const name = first.command[0];
    if (name === undefined)
      throw new WirecageError('give the name of a running cage (wirecage ps lists them): wirecage exec NAME -- CMD', EXIT_USAGE);
    const rest = splitCommand(first.command.slice(1), valued);
    let flags;
    try {
      ({ flags } = await this.parse(Exec, [...first.flags, ...rest.flags]));
    } catch (err) {
      if (isOclifError(err)) throw new WirecageError(err.message, EXIT_USAGE);
      throw err;
    }
    const { execInCage } = await import('../cage/join.js');
    await execInCage({ name, command: rest.command, user: flags.user });
  }
}
