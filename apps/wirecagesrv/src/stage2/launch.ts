// Stage 1's side of `up`: starts stage 2 (stage2/main.js) with @wirecage/netns's launcher, which
// makes it root of a new user namespace, hands it the spec on fd 3 and a clean environment,
// forwards the stop signals and returns its exit status. What is the server's own: the bound
// sockets go along as inherited fds (named in the spec by number) and are closed here once stage 2
// holds them; the kernel NAT's stage 2 runs without a user namespace; a refused user namespace is
// explained.
import { fileURLToPath } from 'node:url';
import { STAGE2_FIRST_EXTRA_FD, diagnoseUserNamespaces, launchStage2 as launch } from '@wirecage/netns';
import { closeBound, type BoundSockets } from './bind.js';
import { EXIT_FAILED, EXIT_USERNS_FAILED, type ServerSpec } from './spec.js';

const STAGE2 = fileURLToPath(new URL('./main.js', import.meta.url));

export async function launchStage2(spec: Omit<ServerSpec, 'fds'>, sockets: BoundSockets): Promise<number> {
  // The kernel NAT changes the host's own network, so its stage 2 stays where `up` runs, with its privileges.
  const kernel = spec.nat.mode === 'kernel';
  const extraFds: number[] = [];
  const pass = (fd: number): number => STAGE2_FIRST_EXTRA_FD + extraFds.push(fd) - 1;
  const fds = { api: pass(sockets.api), wg: sockets.wg.map(pass) };
  let exit;
  try {
    exit = launch({
      script: STAGE2,
      spec: { ...spec, fds } satisfies ServerSpec,
      extraFds,
      userNamespace: !kernel,
      // Stage 2 stops on the first of these and ignores repeats (a process group gets them more than once).
      forwardSignals: ['SIGINT', 'SIGTERM', 'SIGHUP'],
    });
  } finally {
    // Stage 2 holds them now; a copy kept here would keep the ports bound after it exits.
    closeBound(sockets);
  }
  const code = await exit;
  if (code === EXIT_USERNS_FAILED && !kernel) {
    const why = diagnoseUserNamespaces();
    process.stderr.write(`wirecagesrv: the server's user namespace could not be made${why ? `: ${why}` : ''}\n`);
    return EXIT_FAILED;
  }
  return code;
}
