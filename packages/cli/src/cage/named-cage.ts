// Stage 2's side of a named cage (`run --name`). The cage's namespaces are
// held by wirecage-hold (named-holder.ts), and every command of the cage
// joins it by setns through a pidfd (wirecage-join): the first one, forked
// from here, and those of `wirecage exec`, which the caller's own process
// runs after asking the control socket (control.ts). So the first command is
// one process of the cage among others: the cage lives while any process is
// in it (named-life.ts), or with --keep until `wirecage stop`, and `run
// --name` exits with the first command's status once the cage has ended.
import { closeSync, rmSync } from 'node:fs';
import { spawnJoin, exitStatusToCode, type BindMount, type CagedProcess, type JoinPlan } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { EXIT_WIRECAGE_FAILED, FORWARDED_SIGNALS, type CageSpec } from './spec.js';
import { namedCageFile } from './runtime-dir.js';
import { cageFacts, writeFacts } from './named.js';
import { serveControl, type JoinGrant } from './control.js';
import { endHolder, startHolder, type Holder } from './named-holder.js';
import { CageLife } from './named-life.js';
import { cageEnv } from './sealed-spawn.js';
import type { LiveFlow } from './flows-format.js';

/** How long `run --name` gives the cage's processes after SIGTERM when it is signalled itself. */
const STOP_ON_SIGNAL_SECONDS = 10;

export interface CageCleanups {
  push(fn: () => unknown): void;
}

/** Starts a named cage and its first command; wait() resolves with that command's exit code once the cage has ended. */
export async function startNamedCage(
  spec: CageSpec,
  netnsFd: number,
  tunName: string,
  mounts: BindMount[],
  cleanups: CageCleanups,
  log: Logger,
): Promise<{ wait(): Promise<number> }> {
  const named = spec.named!;
  const hold = startHolder(spec, netnsFd, mounts);
  // However stage 2 ends, the holder's end ends everything in the cage (init's pid namespace).
  cleanups.push(() => endHolder(hold));
  const own = [hold.init, hold.pid];
  const factsFile = writeFacts(
    spec.runtimeDir,
    process.pid,
    cageFacts(spec, tunName, { name: named.name, pidns: hold.ns.pid, own, keep: named.keep }),
  );
  cleanups.push(() => rmSync(factsFile, { force: true }));
  const life = new CageLife(hold.ns.pid, own, named.keep);
  // The holder's end (its owner killed it) is the cage's, --keep or not.
  void hold.relay.wait().then(
    () => life.end(),
    () => life.end(),
  );
  const control = await serveControl(namedCageFile(spec.runtimeDir, named.name, 'ctl'), {
    join: () => (life.join() ? joinGrant(spec, tunName, hold) : `the cage ${named.name} is ending`),
    sessionEnded: () => life.sessionEnded(),
    stop: (timeoutSeconds) => life.stop(timeoutSeconds),
    flows: () => cageFlows(spec, netnsFd),
  });
  cleanups.push(() => control.close());
  const first = spawnJoin(firstCommand(spec, tunName), hold.pidfd);
  forwardSignals(first, life, named.name, log);
  return { wait: () => untilCageEnds(first, hold, life) };
}

/** `ps NAME --flows`: conntrack is on in the cage only with --flow-log (flows.ts says why). */
async function cageFlows(spec: CageSpec, netnsFd: number): Promise<LiveFlow[] | string> {
  if (!spec.flowLog)
    return `the cage ${spec.named!.name} tracks no flows: start it with --flow-log FILE (or --flow-log - for stderr) to see them`;
  return (await import('./flows.js')).liveFlows(netnsFd, spec.addresses);
}

function firstCommand(spec: CageSpec, tunName: string): JoinPlan {
  return {
    file: spec.command.file,
    args: spec.command.args,
    env: { ...cageEnv(spec, tunName), WIRECAGE_NAME: spec.named!.name },
    cwd: spec.cwd,
    user: spec.user,
    dropCapabilities: spec.seal.dropCapabilities,
    noNewPrivs: true,
    newSession: true,
  };
}

/** What `wirecage exec` needs to join: where (the holder, checked by its namespaces) and the seal to apply. */
function joinGrant(spec: CageSpec, tunName: string, hold: Holder): JoinGrant {
  return {
    ok: true,
    pid: hold.pid,
    ns: hold.ns,
    name: spec.named!.name,
    tun: tunName,
    seal: {
      dropCapabilities: spec.seal.dropCapabilities,
      ...spec.seal.passes,
      shares: spec.seal.shares.map((s) => s.source),
      user: spec.user,
    },
  };
}

/** Our signals go to the first command while it runs; after it, one ends the cage as `wirecage stop` would. */
function forwardSignals(first: CagedProcess, life: CageLife, name: string, log: Logger): void {
  for (const sig of FORWARDED_SIGNALS) {
    process.on(sig, () => {
      if (life.firstRunning) first.kill(sig);
      else if (sig !== 'SIGWINCH') {
        log.info(`${sig}: stopping the cage ${name}`);
        void life.stop(STOP_ON_SIGNAL_SECONDS);
      }
    });
  }
}

async function untilCageEnds(first: CagedProcess, hold: Holder, life: CageLife): Promise<number> {
  let code = EXIT_WIRECAGE_FAILED;
  const firstDone = first.wait().then((status) => {
    code = exitStatusToCode(status);
    life.firstEnded();
  });
  // The cage ends when it is empty or stopped: with the first command still in it then, the
  // holder's end kills it with everything else.
  await life.ended;
  await endHolder(hold);
  await firstDone;
  closeSync(hold.pidfd);
  life.torndown();
  return code;
}
