// Stage 1's side of `up`: starts stage 2 as root in a new user namespace
// (through wirecage-userns: Node cannot unshare a user namespace itself),
// hands it the spec over fd 3 and the bound sockets as inherited fds,
// forwards the stop signals and returns stage 2's exit status.
import { spawn, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { diagnoseUserNamespaces, userNamespaceCommand } from '@wirecage/netns';
import { closeBound, type BoundSockets } from './bind.js';
import { EXIT_FAILED, EXIT_USERNS_FAILED, SPEC_FD, type ServerSpec } from './spec.js';

const STAGE2 = fileURLToPath(new URL('./main.js', import.meta.url));
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function launchStage2(spec: Omit<ServerSpec, 'fds'>, sockets: BoundSockets): Promise<number> {
  // The kernel NAT changes the host's own network, so its stage 2 stays where `up` runs, with its privileges.
  const kernel = spec.nat.mode === 'kernel';
  const [helper, ...rest] = kernel ? [process.execPath, STAGE2] : userNamespaceCommand(process.execPath, [STAGE2], { dieWithParent: true });
  // Started as root, the namespace maps every id (stage 2 then reads files as root would);
  // otherwise the helper maps the caller alone to root.
  const args = !kernel && process.getuid?.() === 0 ? ['--uid-map', '0:0:4294967295', '--gid-map', '0:0:4294967295', ...rest] : rest;
  // The child's fds: 0-2 ours, 3 the spec pipe, then the sockets in order.
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit', 'pipe'];
  const fdOf = (fd: number | null): number | null => {
    if (fd === null) return null;
    stdio.push(fd);
    return stdio.length - 1;
  };
  const fds = { api: fdOf(sockets.api)!, udp4: fdOf(sockets.udp4), udp6: fdOf(sockets.udp6) };
  if (stdio[SPEC_FD] !== 'pipe') throw new Error('stage 2 expects its spec on fd 3');
  // A clean environment: nothing of ours reaches stage 2 except through the spec.
  let child;
  try {
    child = spawn(helper!, args, { stdio, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  } finally {
    // Stage 2 holds them now; a copy kept here would keep the ports bound after it exits.
    closeBound(sockets);
  }
  const pipe = child.stdio[SPEC_FD] as NodeJS.WritableStream;
  pipe.on('error', () => {}); // stage 2 died early: its exit status tells why
  pipe.end(JSON.stringify({ ...spec, fds } satisfies ServerSpec));

  // Stage 2 stops on the first of these and ignores repeats (a process group gets them more than once).
  const forward = SIGNALS.map((sig) => {
    const h = () => child!.kill(sig);
    process.on(sig, h);
    return () => process.off(sig, h);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child!.once('error', reject);
    child!.once('exit', (c, s) => resolve([c, s]));
  }).finally(() => forward.forEach((off) => off()));

  if (signal) return 128 + (constants.signals[signal] ?? 0);
  if (code === EXIT_USERNS_FAILED && !kernel) {
    const why = diagnoseUserNamespaces();
    process.stderr.write(`wirecagesrv: the server's user namespace could not be made${why ? `: ${why}` : ''}\n`);
    return EXIT_FAILED;
  }
  return code ?? EXIT_FAILED;
}
