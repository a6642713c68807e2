import { Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { formatCheck, runDoctor } from '../doctor/index.js';

export default class Doctor extends WirecageCommand {
  static override summary = 'Check what a cage needs on this machine, and say what to do about what is missing.';
  static override description = `One line per check, "ok" or "FAIL" with what to do:
- user namespaces: the wirecage-userns helper makes a network namespace inside
  an unprivileged user namespace; when refused, it names the cause
  (kernel.apparmor_restrict_unprivileged_userns, kernel.unprivileged_userns_clone,
  user.max_user_namespaces, or a seccomp filter as in a container); under
  Ubuntu 23.10+'s AppArmor restriction the answer is \`sudo wirecage setup
  apparmor\`, a profile for wirecage's helper alone
- /dev/net/tun: readable and writable by you
- kernel: 5.11 or newer (pidfd_open, close_range with CLOSE_RANGE_CLOEXEC)
- config directory: $XDG_CONFIG_HOME/wirecage (~/.config/wirecage) and its keys
  directory 0700, config.toml and key files 0600

Run it as the user who runs the cages: the answers are that user's.

Exit status: 0 when every check passed, 1 otherwise.`;
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];
  static override flags = {
    json: Flags.boolean({ summary: 'Print {"ok", "checks": [{"name", "ok", "detail", "fix"}]} as JSON instead of lines.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Doctor);
    const checks = runDoctor();
    const ok = checks.every((c) => c.ok);
    process.stdout.write(flags.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : checks.map((c) => `${formatCheck(c)}\n`).join(''));
    process.exitCode = ok ? 0 : 1;
  }
}
