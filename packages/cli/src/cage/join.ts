// `wirecage exec`'s side of joining a named cage: ask the cage's control
// socket (control.ts) for the grant, open a pidfd of the process it names and
// check it is that process (its namespaces' inodes, then that it still lives:
// a pid can be reused), then become wirecage-join, which keeps this pid (the
// caller's signals and the exit status pass straight through, as with `run`)
// and the control connection (the cage counts the session while it is open).
import { closeSync } from 'node:fs';
import { EXIT_USAGE } from './spec.js';
import { controlRequest, type JoinGrant } from './control.js';
import { checkCageName, nsInode } from './named.js';
import { namedCageFile, runtimeDir } from './runtime-dir.js';
import { joinEnvironment } from './seal.js';
import { lookupUser } from './user-lookup.js';
import { WirecageError } from '../errors.js';

export interface ExecOptions {
  name: string;
  command: string[];
  /** --user (name or uid): only for a caller that is root. */
  user?: string;
}

export async function execInCage(o: ExecOptions): Promise<never> {
  const name = checkCageName(o.name);
  if (o.command.length === 0)
    throw new WirecageError(`give the command to run in ${name}: wirecage exec ${name} -- CMD [ARGS...]`, EXIT_USAGE);
  const user = o.user === undefined ? undefined : lookupUser(o.user);
  const { reply, fd } = await controlRequest(namedCageFile(runtimeDir(), name, 'ctl'), name, { op: 'join' });
  if (!reply.ok) throw new WirecageError(`${name}: ${(reply as { error: string }).error}`);
  if (!('pid' in reply)) throw new WirecageError(`${name}: the cage answered a join without a grant`);
  const grant = reply;
  const { CagedProcess, execJoin, pidfdOpen } = await import('@wirecage/netns');
  const gone = () => new WirecageError(`the cage ${name} has ended`);
  let pidfd: number;
  try {
    pidfd = pidfdOpen(grant.pid);
  } catch {
    throw gone();
  }
  const same = (['user', 'mnt', 'net', 'pid'] as const).every((k) => nsInode(grant.pid, k) === grant.ns[k]);
  try {
    if (!same || !new CagedProcess(grant.pid, pidfd).kill(0)) throw gone();
  } catch (err) {
    closeSync(pidfd);
    throw err instanceof WirecageError ? err : gone();
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return execJoin(
    {
      file: o.command[0]!,
      args: o.command.slice(1),
      env: { ...joinEnvironment(grant.seal, env, grant.seal.shares), WIRECAGE: '1', WIRECAGE_TUN: grant.tun, WIRECAGE_NAME: grant.name },
      cwd: process.cwd(),
      user: user ?? grant.seal.user,
      dropCapabilities: grant.seal.dropCapabilities,
      noNewPrivs: true,
      newSession: true,
    },
    pidfd,
    [fd],
  );
}

export type { JoinGrant };
