import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeBuildDir } from './native.js';

/** Absolute path of the wirecage-userns executable (see README for its command line). */
export const userNamespaceHelper = join(nativeBuildDir, 'wirecage-userns');

/** argv that runs `program args...` as root in a fresh user namespace via the helper. */
export function userNamespaceCommand(program: string, args: string[] = [], options: { dieWithParent?: boolean } = {}): string[] {
  return [userNamespaceHelper, ...(options.dieWithParent ? ['--die-with-parent'] : []), '--', program, ...args];
}

function readSysctl(procSys: string, name: string): number | undefined {
  try {
    const value = Number.parseInt(readFileSync(join(procSys, ...name.split('.')), 'utf8').trim(), 10);
    return Number.isNaN(value) ? undefined : value;
  } catch {
    return undefined; // the knob does not exist on this kernel
  }
}

/**
 * Explains why unprivileged user namespaces would fail here, naming the sysctl to change,
 * or returns null when none of the known switches forbids them. `procSys` exists for tests.
 */
export function diagnoseUserNamespaces(procSys = '/proc/sys'): string | null {
  if (readSysctl(procSys, 'kernel.unprivileged_userns_clone') === 0) {
    return 'unprivileged user namespaces are disabled: run `sysctl -w kernel.unprivileged_userns_clone=1`';
  }
  if (readSysctl(procSys, 'user.max_user_namespaces') === 0) {
    return 'user namespaces are disabled (user.max_user_namespaces = 0): run `sysctl -w user.max_user_namespaces=15000`';
  }
  if (readSysctl(procSys, 'kernel.apparmor_restrict_unprivileged_userns') === 1) {
    return (
      'AppArmor restricts unprivileged user namespaces: run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` ' +
      'or install an AppArmor profile for wirecage that allows userns'
    );
  }
  return null;
}
