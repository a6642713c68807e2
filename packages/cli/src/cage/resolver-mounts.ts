// The cage's own resolv.conf and nsswitch.conf (from the config's DNS), as
// read-only bind mounts over the host's.
import { rmSync } from 'node:fs';
import type { BindMount } from '@wirecage/netns';
import type { CleanupStack } from '@wirecage/netns';
import { nsswitchConf, resolvConf } from './resolver.js';
import { cageFile, writeCageFile } from './runtime-dir.js';
import { mountTarget } from './seal.js';
import type { CageSpec } from './spec.js';

export function resolverMounts(spec: CageSpec, tunName: string, cleanups: CleanupStack): BindMount[] {
  if (!spec.dns) return [];
  const mounts: BindMount[] = [];
  for (const [kind, content] of [
    ['resolv.conf', resolvConf(spec.dns.servers, spec.dns.search)],
    ['nsswitch.conf', nsswitchConf()],
  ] as const) {
    // Next to the control socket (private to the user, out of the cage's sight); bind-mounted before the hiding.
    const file = cageFile(spec.runtimeDir, tunName, process.pid, kind);
    writeCageFile(file, content);
    cleanups.push(() => rmSync(file, { force: true }));
    // /etc/resolv.conf may link into /run (systemd-resolved), which is private in the cage: made there.
    mounts.push({ source: file, target: mountTarget(`/etc/${kind}`), readonly: true, create: true });
  }
  return mounts;
}
