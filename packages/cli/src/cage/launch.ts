// Stage 1's side of the cage: starts stage 2 as root in a new user namespace
// (through wirecage-userns, since Node cannot unshare a user namespace
// itself) and hands it the CageSpec over fd 3. When stage 1 has nothing left
// to do after the cage, it execs the helper, which keeps wirecage's pid
// (signals and the exit status pass straight through) and frees the oclif
// process's ~60 MB for the life of the cage. Otherwise (port forwards to
// remove at exit) it stays, forwards signals and returns the exit code.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';
import { execWithInput, userNamespaceCommand } from '@wirecage/netns';
import { EXIT_WIRECAGE_FAILED, FORWARDED_SIGNALS, type CageSpec } from './spec.js';

const STAGE2 = fileURLToPath(new URL('./stage2.js', import.meta.url));

function helperArgv(dieWithParent: boolean): string[] {
  const [helper, ...rest] = userNamespaceCommand(process.execPath, [STAGE2], { dieWithParent });
  // Started as root, the namespace maps every id so the command can drop to --user;
  // otherwise the helper maps the caller alone to root.
  return process.getuid?.() === 0 ? [helper!, '--uid-map', '0:0:4294967295', '--gid-map', '0:0:4294967295', ...rest] : [helper!, ...rest];
}

// Stage 2 gets a clean environment: nothing of ours reaches the command except through the spec.
const stage2Env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin' });

/** Becomes the cage (never returns): for a run with nothing to do after the command. */
export function execCage(spec: CageSpec): never {
  return execWithInput(helperArgv(false), stage2Env(), Buffer.from(JSON.stringify(spec)));
}

export async function launchCage(spec: CageSpec): Promise<number> {
  const [helper, ...args] = helperArgv(true);
  const child = spawn(helper!, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: stage2Env(),
  });
  const pipe = child.stdio[3] as NodeJS.WritableStream;
  pipe.on('error', () => {}); // stage 2 died early: its exit status tells why
  pipe.end(JSON.stringify(spec));

  const forward = FORWARDED_SIGNALS.map((sig) => {
    const h = () => {
      if (!fromTerminal(sig)) child.kill(sig);
    };
    process.on(sig, h);
    return () => process.off(sig, h);
  });

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  }).finally(() => forward.forEach((off) => off()));

  if (signal) return 128 + (signalNumber(signal) ?? 0);
  return code ?? EXIT_WIRECAGE_FAILED;
}

// Stage 2 is in our process group: what a terminal sends to the group reaches it directly, and it
// forwards that itself; passing it on from here too would deliver it twice.
function fromTerminal(sig: NodeJS.Signals): boolean {
  return (sig === 'SIGINT' || sig === 'SIGQUIT') && [0, 1, 2].some((fd) => isatty(fd));
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return constants.signals[sig];
}
