import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeDir } from './native.js';

/** Absolute path of the wirecage-userns executable (see README for its command line). */
export const userNamespaceHelper = join(nativeDir, 'wirecage-userns');

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

/** Whether a seccomp filter confines this process (`Seccomp: 2` in /proc/self/status, as in a container). */
function seccompFiltered(statusFile: string): boolean {
  try {
    return /^Seccomp:\s*2$/m.test(readFileSync(statusFile, 'utf8'));
  } catch {
    return false; // no such line on kernels without seccomp
  }
}

export interface UserNamespaceDiagnosisOptions {
  /**
   * A user namespace was just refused. A seccomp filter is then a suspect too: the sysctls do not
   * show it, and since many processes run under one that allows namespaces (systemd services,
   * podman), it is named only after a refusal.
   */
  refused?: boolean;
  /** /proc/self/status, for tests. */
  statusFile?: string;
}

/**
 * Explains why unprivileged user namespaces would fail here, naming the sysctl to change (or the
 * seccomp filter), or returns null when none of the known switches forbids them. `procSys` exists
 * for tests.
 */
export function diagnoseUserNamespaces(procSys = '/proc/sys', options: UserNamespaceDiagnosisOptions = {}): string | null {
  if (readSysctl(procSys, 'kernel.unprivileged_userns_clone') === 0) {
    return 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0): run `sysctl -w kernel.unprivileged_userns_clone=1`';
  }
  if (readSysctl(procSys, 'user.max_user_namespaces') === 0) {
    return 'user namespaces are disabled (user.max_user_namespaces = 0): run `sysctl -w user.max_user_namespaces=15000`';
  }
  if (readSysctl(procSys, 'kernel.apparmor_restrict_unprivileged_userns') === 1) {
    return (
      'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): ' +
      'install an AppArmor profile for wirecage-userns that allows userns, ' +
      'or run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (system-wide)'
    );
  }
  if (options.refused && seccompFiltered(options.statusFile ?? '/proc/self/status')) {
    return (
      'a seccomp filter refuses them (Seccomp: 2 in /proc/self/status, as in a container: ' +
      "Docker's default profile refuses CLONE_NEWUSER): run the container with a seccomp profile that allows unshare and clone of user namespaces"
    );
  }
  return null;
}
