// What to do when user namespaces are refused, as `wirecage doctor` and a
// failing `wirecage run` say it: @wirecage/netns's diagnosis, except under
// Ubuntu's AppArmor restriction, where the first answer is wirecage's own
// narrow profile and the system-wide switch only the alternative. Kept free
// of oclif and child processes: stage 2 of `wirecage run` may load it.
import { readFileSync, realpathSync } from 'node:fs';
import { diagnoseUserNamespaces, userNamespaceHelper } from '@wirecage/netns';
import { attachedPath, profileFile, renderProfile } from '../apparmor/profile.js';

const APPARMOR_SYSCTL = 'kernel.apparmor_restrict_unprivileged_userns';

export interface UserNamespaceAdviceOptions {
  /** Where the sysctls are read (tests). */
  procSys?: string;
  /** The /proc/self/status whose Seccomp line is read (tests). */
  statusFile?: string;
  /** Where an installed profile is looked for (tests). */
  apparmorDir?: string;
  /** A user namespace (or a namespace inside one) was just refused: a seccomp filter is a suspect too. */
  refused?: boolean;
}

/** The cause and what to do, or null when no known switch explains a refusal. */
export function userNamespaceAdvice(options: UserNamespaceAdviceOptions = {}): string | null {
  const cause = diagnoseUserNamespaces(options.procSys, { refused: options.refused, statusFile: options.statusFile });
  // netns names the sysctl in its message; it is the one cause whose answer wirecage has a command for.
  if (cause === null || !cause.includes(APPARMOR_SYSCTL)) return cause;
  return apparmorAdvice(profileFile(options.apparmorDir));
}

function apparmorAdvice(file: string): string {
  const why = `AppArmor restricts unprivileged user namespaces (${APPARMOR_SYSCTL} = 1, as Ubuntu 23.10+ ships it)`;
  const otherwise = `or lift the restriction for every program: \`sudo sysctl -w ${APPARMOR_SYSCTL}=0\``;
  let installed: string;
  try {
    installed = readFileSync(file, 'utf8');
  } catch {
    return `${why}: run \`sudo wirecage setup apparmor\` once, a profile that lets this wirecage's helper alone make them; ${otherwise}`;
  }
  const helper = helperRealPath();
  if (helper !== undefined && installed === renderProfile(helper)) {
    return (
      `${why}, and ${file} is written for this wirecage but not in effect: load it with \`sudo apparmor_parser -r ${file}\` ` +
      `(or run \`sudo wirecage setup apparmor\` again); ${otherwise}`
    );
  }
  const names = attachedPath(installed);
  return (
    `${why}, and ${file} ${names ? `names ${names}` : 'names another program'}, not this wirecage's helper${helper ? ` (${helper})` : ''}: ` +
    `run \`sudo wirecage setup apparmor\` again; ${otherwise}`
  );
}

function helperRealPath(): string | undefined {
  try {
    return realpathSync(userNamespaceHelper);
  } catch {
    return undefined;
  }
}
