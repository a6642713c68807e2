// Unprivileged user namespaces, tried for real: the wirecage-userns helper
// (what `wirecage run` starts) runs `unshare --net node -e ''`, a network namespace
// inside the new user namespace, which is what a cage needs. Trying a bare
// `true` would pass under Ubuntu's AppArmor restriction, which lets the
// namespace be made but takes every capability inside it away.
import { spawnSync } from 'node:child_process';
import { userNamespaceCommand } from '@wirecage/netns';
import type { DoctorCheck } from './check.js';
import { userNamespaceAdvice } from './userns-advice.js';

export interface UserNamespaceProbe {
  /** Where the sysctls are read (tests). */
  procSys?: string;
  /** The /proc/self/status of the probing process, for the seccomp line (tests). */
  statusFile?: string;
  /** Where `wirecage setup apparmor` writes its profile (tests). */
  apparmorDir?: string;
}

export function checkUserNamespaces(probe: UserNamespaceProbe = {}): DoctorCheck {
  const name = 'user namespaces';
  // node itself as the program run in there: it is on every machine that runs wirecage, `true` may not be on PATH.
  const [file, ...args] = userNamespaceCommand('unshare', ['--net', process.execPath, '-e', '']);
  const r = spawnSync(file!, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  if (r.status === 0) return { name, ok: true, detail: 'a network namespace inside an unprivileged user namespace works' };
  if (r.error)
    return {
      name,
      ok: false,
      detail: `cannot run ${file}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`,
      fix: 'build or reinstall wirecage',
    };
  if (r.status === 127)
    return { name, ok: false, detail: '`unshare` (util-linux) is missing, so the probe cannot run', fix: 'install util-linux' };
  // The first line is the refusal itself (errno); the helper's own hint is replaced by the diagnosis.
  const why =
    r.stderr
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.replace(/^wirecage-userns: /, '') ?? `exit status ${r.status ?? r.signal}`;
  const cause = userNamespaceAdvice({ ...probe, refused: true });
  return {
    name,
    ok: false,
    detail: `refused (${why.trim()})`,
    fix: cause ?? "no known switch explains it: check the kernel's user namespace support (CONFIG_USER_NS)",
  };
}
