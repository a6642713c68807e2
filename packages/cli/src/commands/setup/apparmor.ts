import { realpathSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { WirecageCommand } from '../../command.js';
import { userNamespaceHelper } from '@wirecage/netns';
import {
  checkKernel,
  findParser,
  installProfile,
  realSystem,
  restrictionEnabled,
  SetupError,
  type InstallResult,
} from '../../apparmor/install.js';
import { attachedPath, PROFILE_NAME, profileFile, renderProfile } from '../../apparmor/profile.js';

export default class SetupApparmor extends WirecageCommand {
  static override summary =
    "Let this wirecage's helper alone make user namespaces under Ubuntu 23.10+'s AppArmor restriction (root, once).";
  static override description = `Ubuntu 23.10 and later (kernel.apparmor_restrict_unprivileged_userns = 1)
let an unconfined program make a user namespace but take every capability
away inside it, so no cage can start.
This writes ${profileFile()}, an AppArmor profile
shaped as Ubuntu's own for chrome or vpnns, which grants
\`userns\` to this installation's wirecage-userns helper (by its real path)
and to what it starts, the cage and its command; then it loads the profile
with \`apparmor_parser -r\`. The restriction stays on for every other program.

Run it once as root, and again after moving or reinstalling wirecage
elsewhere. --print shows the profile without root.

Undo:
  $ sudo apparmor_parser -R ${profileFile()}
  $ sudo rm ${profileFile()}

Exit status: 0 when the profile is loaded (or printed); 1 when not root,
when this kernel's AppArmor restricts no user namespace (nothing to do), or
when apparmor_parser is missing or rejects the profile (then nothing is left
written).`;
  static override examples = ['<%= config.bin %> setup apparmor --print', '$ sudo <%= config.bin %> setup apparmor'];
  static override flags = {
    print: Flags.boolean({ summary: 'Print the profile for this installation instead of installing it (no root needed).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SetupApparmor);
    const helper = helperRealPath();
    const profile = renderProfile(helper);
    if (flags.print) {
      process.stdout.write(profile);
      return;
    }
    const sys = realSystem();
    checkKernel(sys);
    if (process.getuid?.() !== 0) {
      throw new SetupError(
        `writing ${profileFile()} and loading it takes root: run \`sudo wirecage setup apparmor\` ` +
          '(`wirecage setup apparmor --print` shows the profile first)',
      );
    }
    const result = installProfile(profile, sys, findParser(sys.path));
    process.stdout.write(report(result, helper, restrictionEnabled(sys.procSys)));
  }
}

// AppArmor attaches by the path the kernel resolves, so a symlink (npm's bin links, a workspace) would never match.
function helperRealPath(): string {
  try {
    return realpathSync(userNamespaceHelper);
  } catch (err) {
    throw new SetupError(
      `wirecage's user-namespace helper is missing (${userNamespaceHelper}: ${(err as NodeJS.ErrnoException).code}): reinstall wirecage`,
    );
  }
}

function report(r: InstallResult, helper: string, restricted: boolean | undefined): string {
  const previous = r.replaced === undefined ? undefined : attachedPath(r.replaced);
  const wrote = r.unchanged
    ? `${r.file} already held this profile`
    : `${r.replaced === undefined ? 'wrote' : 'replaced'} ${r.file} (mode 0644)${previous ? `, which attached to ${previous},` : ''}`;
  const lines = [
    `${wrote}: profile ${PROFILE_NAME}, attached to ${helper}`,
    `loaded it: ${r.parser} -r ${r.file}`,
    "wirecage's helper, and what it starts (the cage and its command), may now make user namespaces; nothing else changed.",
  ];
  if (restricted === false)
    lines.push('(kernel.apparmor_restrict_unprivileged_userns is 0 now: the profile matters once it is 1, as Ubuntu ships it.)');
  lines.push(
    'It names this installation: after moving or reinstalling wirecage elsewhere, run `sudo wirecage setup apparmor` again.',
    'Check with `wirecage doctor`, as the user who runs the cages.',
    'To undo:',
    `  sudo apparmor_parser -R ${r.file}`,
    `  sudo rm ${r.file}`,
  );
  return `${lines.map((l) => `${l}\n`).join('')}`;
}
