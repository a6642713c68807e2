// Stage 1's side of the cage: starts stage 2 as root in a new user namespace
// (through wirecage-userns, since Node cannot unshare a user namespace
// itself), hands it the CageSpec over fd 3, forwards signals and returns the
// exit code to use.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { diagnoseUserNamespaces, userNamespaceCommand } from '@wirecage/netns';
import { EXIT_WIRECAGE_FAILED, FORWARDED_SIGNALS, terminalDelivers, type CageSpec } from './spec.js';

const STAGE2 = fileURLToPath(new URL('./stage2.js', import.meta.url));

export async function launchCage(spec: CageSpec): Promise<number> {
  const [helper, ...rest] = userNamespaceCommand(process.execPath, [STAGE2], { dieWithParent: true });
  // Started as root, the namespace maps every id so the command can drop to --user;
  // otherwise the helper maps the caller alone to root.
  const args = process.getuid?.() === 0 ? ['--uid-map', '0:0:4294967295', '--gid-map', '0:0:4294967295', ...rest] : rest;
  // Stage 2 gets a clean environment: nothing of ours reaches the command except through the spec.
  const child = spawn(helper!, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const pipe = child.stdio[3] as NodeJS.WritableStream;
  pipe.on('error', () => {}); // stage 2 died early: its exit status tells why
  pipe.end(JSON.stringify(spec));

  const forward = FORWARDED_SIGNALS.map((sig) => {
    const h = () => {
      if (!terminalDelivers(sig)) child.kill(sig);
    };
    process.on(sig, h);
    return () => process.off(sig, h);
  });

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  }).finally(() => forward.forEach((off) => off()));

  if (signal) return 128 + (signalNumber(signal) ?? 0);
  if (code === EXIT_WIRECAGE_FAILED) {
    const why = diagnoseUserNamespaces();
    if (why) process.stderr.write(`wirecage: ${why}\n`);
  }
  return code ?? EXIT_WIRECAGE_FAILED;
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return constants.signals[sig];
}
