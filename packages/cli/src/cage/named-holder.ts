// A named cage's holder: wirecage-hold, started by wirecage-cage as the
// cage's "command" with the whole seal (sealed-spawn.ts), so that its
// namespaces are the cage's for as long as it lives, whatever comes and goes.
// Every command of the cage joins it (wirecage-join through a pidfd of it);
// its end (init's pid namespace going) ends everything in the cage.
import { closeSync, openSync } from 'node:fs';
import { CagedProcess, holdProgram, pidfdOpen, spawnInCage, type BindMount } from '@wirecage/netns';
import type { CageSpec } from './spec.js';
import type { JoinGrant } from './control.js';
import { isPrivatePath, mountTarget } from './seal.js';
import { childrenOf, nsInode } from './named.js';
import { sealedSpawnOptions } from './sealed-spawn.js';
import { WirecageError } from '../errors.js';

export interface Holder {
  /** wirecage-cage's relay (outside the cage's pid namespace): its end is the cage's. */
  relay: CagedProcess;
  init: number;
  pid: number;
  pidfd: number;
  /** The inodes of the holder's namespaces: the cage's, which a joiner checks. */
  ns: JoinGrant['ns'];
}

export function startHolder(spec: CageSpec, netnsFd: number, mounts: BindMount[]): Holder {
  // Under a private directory (an install under /tmp), the cage would not see the holder: bound in.
  const target = mountTarget(holdProgram);
  const own = isPrivatePath(target) ? [{ source: target, target, readonly: true, create: true }] : [];
  const devNull = openSync('/dev/null', 'r+');
  let relay: CagedProcess;
  try {
    relay = spawnInCage({
      ...sealedSpawnOptions(spec, netnsFd, [...mounts, ...own]),
      file: holdProgram,
      env: {},
      cwd: '/',
      stdio: [devNull, devNull, devNull],
    });
  } finally {
    closeSync(devNull);
  }
  // spawnInCage returns once the holder has exec'd: relay -> init -> holder all exist.
  const init = childrenOf(relay.pid)[0];
  const pid = init === undefined ? undefined : childrenOf(init)[0];
  if (init === undefined || pid === undefined) {
    relay.kill('SIGKILL');
    throw new WirecageError(`the cage's holder process is not there (relay ${relay.pid}, init ${init ?? 'missing'}): cannot name the cage`);
  }
  const ns = {
    user: nsInode(pid, 'user')!,
    mnt: nsInode(pid, 'mnt')!,
    net: nsInode(pid, 'net')!,
    pid: nsInode(pid, 'pid')!,
  };
  return { relay, init, pid, pidfd: pidfdOpen(pid), ns };
}

/** Ends the holder, and with it everything in the cage; resolves once the relay is reaped. */
export async function endHolder(hold: Holder): Promise<void> {
  try {
    hold.relay.kill('SIGTERM');
  } catch {
    // already gone (killed by its owner): waiting reaps it
  }
  await hold.relay.wait();
}
