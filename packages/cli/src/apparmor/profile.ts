// The AppArmor profile `wirecage setup apparmor` installs: it names the
// wirecage-userns helper so that AppArmor 4 (Ubuntu 23.10+) can grant it
// `userns`, shaped as Ubuntu 24.04's own profiles for tools that make
// unprivileged namespaces (chrome, msedge, vpnns, ...). Debian bookworm's
// apparmor_parser (3.0.8) predates the `userns` rule and abi 4.0, so nothing
// here can parse-check it: the test pins the text instead.
import { join } from 'node:path';
import { WirecageError } from '../errors.js';

export const PROFILE_NAME = 'wirecage-userns';

/** Where the profile goes: /etc/apparmor.d/wirecage-userns. */
export const profileFile = (apparmorDir = '/etc/apparmor.d') => join(apparmorDir, PROFILE_NAME);

export class ProfilePathError extends WirecageError {
  override name = 'ProfilePathError';
}

// Characters an attachment path can hold unquoted; anything else is quoted, and AppArmor's pattern
// characters (and @ of @{variables}) are escaped so the path matches itself only.
const PLAIN = /^[A-Za-z0-9/._+-]+$/;

/** The helper's path as an AppArmor attachment: the literal path, never a pattern. */
export function attachmentPath(path: string): string {
  if (!path.startsWith('/')) throw new ProfilePathError(`AppArmor attaches to absolute paths only, not ${JSON.stringify(path)}`);
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  if (/[\x00-\x1f\x7f]/.test(path))
    throw new ProfilePathError(`AppArmor cannot name a path with control characters: ${JSON.stringify(path)}`);
  if (PLAIN.test(path)) return path;
  return `"${path.replace(/[\\"*?[\]{}^@,]/g, (c) => `\\${c}`)}"`;
}

/** The attachment of a profile file's first profile, as written there (quoted and escaped if it was). */
export function attachedPath(profileText: string): string | undefined {
  return /^profile \S+ ("(?:[^"\\]|\\.)*"|\S+)/m.exec(profileText)?.[1];
}

/** The whole profile file for the helper at `helperPath` (its real path: AppArmor sees no symlinks). */
export function renderProfile(helperPath: string): string {
  return `# Written by \`wirecage setup apparmor\`. Undo:
#   sudo apparmor_parser -R /etc/apparmor.d/${PROFILE_NAME}
#   sudo rm /etc/apparmor.d/${PROFILE_NAME}
#
# With kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+), an
# unconfined program that makes a user namespace is moved to the
# unprivileged_userns profile, which denies it every capability inside: the
# cage could make neither its network namespace nor its TUN device. This
# profile confines nothing (flags=(unconfined)); it gives one executable,
# wirecage's helper, a name AppArmor can grant \`userns\` to, as Ubuntu's own
# profiles do for chrome or vpnns.
#
# One path is enough. wirecage-userns makes the cage's user namespace and
# execs stage 2 (node) in it; stage 2 execs wirecage-cage, which makes the
# command's user namespace, then execs the command. A program exec'd from an
# unconfined-mode profile stays in it unless another profile attaches to that
# program, so all of them run under this one, the command included: like
# everything the helper starts, it may make user namespaces as it could on a
# system without the restriction.

abi <abi/4.0>,
include <tunables/global>

profile ${PROFILE_NAME} ${attachmentPath(helperPath)} flags=(unconfined) {
  userns,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/${PROFILE_NAME}>
}
`;
}
