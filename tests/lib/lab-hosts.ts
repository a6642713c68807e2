// Names for one lab namespace, never the machine's own /etc/hosts: `ip netns
// exec` binds each file of /etc/netns/<ns>/ over its namesake in /etc, so
// whatever is started in the namespace through it (wirecage, and its stage 2
// resolving an Endpoint again) resolves with these. The hosts file is
// rewritten in place, as the bind mount holds the inode: a running process
// sees the change at its next look-up. host.conf says `multi on`, without
// which glibc's files backend gives only the first line of a name (Debian's
// own host.conf says it too; the lab does not count on that).
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, Netns } from './netns.js';

const ETC_NETNS = '/etc/netns';

export interface LabHosts {
  /** Makes `name` resolve to `addresses`, in this order, in `ns` (replacing what it resolved to). */
  resolve(name: string, ...addresses: string[]): void;
}

export function labHosts(lab: Lab, ns: Netns): LabHosts {
  const madeEtcNetns = !existsSync(ETC_NETNS);
  const dir = join(ETC_NETNS, ns.name);
  mkdirSync(dir, { recursive: true });
  lab.onTeardown(() => {
    rmSync(dir, { recursive: true, force: true });
    if (madeEtcNetns && existsSync(ETC_NETNS) && readdirSync(ETC_NETNS).length === 0) rmdirSync(ETC_NETNS);
  });
  writeFileSync(join(dir, 'host.conf'), 'multi on\n');
  const hostsFile = join(dir, 'hosts');
  const names = new Map<string, string[]>();
  const write = () => {
    const lines = [...names].flatMap(([name, addresses]) => addresses.map((a) => `${a} ${name}`));
    writeFileSync(hostsFile, ['127.0.0.1 localhost', ...lines, ''].join('\n'));
  };
  write();
  return {
    resolve(name, ...addresses) {
      names.set(name, addresses);
      write();
    },
  };
}
