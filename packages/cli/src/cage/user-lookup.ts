// --user NAME|UID of `run` and `exec`: the ids and groups to run the command
// as, from the host's user database (`id`, so NSS sources count as for any
// login). Only root may start a command as another user.
import { execFileSync } from 'node:child_process';
import { RunError } from './run-error.js';

export function lookupUser(user: string): { uid: number; gid: number; groups: number[] } {
  if (process.getuid?.() !== 0) throw new RunError('--user needs wirecage to be started as root');
  const id = (args: string[]) => execFileSync('id', [...args, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  try {
    return { uid: Number(id(['-u'])), gid: Number(id(['-g'])), groups: id(['-G']).split(/\s+/).map(Number) };
  } catch {
    throw new RunError(`--user ${user}: no such user`);
  }
}
