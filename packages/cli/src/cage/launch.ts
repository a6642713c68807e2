// Stage 1's side of the cage: starts stage 2 (cage/stage2.js) with @wirecage/netns's launcher,
// which makes it root of a new user namespace, hands it the CageSpec on fd 3 and a clean
// environment (PATH alone: nothing of ours reaches the command except through the spec). What is
// the cli's own: when stage 1 has nothing left to do after the cage, it execs the helper, which
// keeps wirecage's pid (signals and the exit status pass straight through) and frees the oclif
// process's ~60 MB for the life of the cage (a server run's key-slot lock, servers/key-slot.ts,
// goes along as fd 4). Otherwise (port forwards to remove at exit) it stays, forwards signals but
// those a terminal sent, and returns the exit code.
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';
import { execStage2, launchStage2 } from '@wirecage/netns';
import { FORWARDED_SIGNALS, type CageSpec } from './spec.js';

const STAGE2 = fileURLToPath(new URL('./stage2.js', import.meta.url));

/** Becomes the cage (never returns): for a run with nothing to do after the command; stage 2 inherits `extraFds` as fds 4, 5, ... */
export function execCage(spec: CageSpec, extraFds: readonly number[] = []): never {
  return execStage2({ script: STAGE2, spec, extraFds });
}

/** Starts the cage and resolves to its exit code; stage 2 inherits `extraFds` (a server run's key-slot lock) as fds 4, 5, ... */
export async function launchCage(spec: CageSpec, extraFds: readonly number[] = []): Promise<number> {
  return launchStage2({ script: STAGE2, spec, extraFds, forwardSignals: FORWARDED_SIGNALS, skipSignal: fromTerminal });
}

// Stage 2 is in our process group: what a terminal sends to the group reaches it directly, and it
// forwards that itself; passing it on from here too would deliver it twice.
function fromTerminal(sig: NodeJS.Signals): boolean {
  return (sig === 'SIGINT' || sig === 'SIGQUIT') && [0, 1, 2].some((fd) => isatty(fd));
}
