// Runs `ip` or `nft` inside the NAT's network namespace. The command is forked
// by @wirecage/netns and enters the namespace by fd (setns in the child), so
// no thread of this process moves. Stage 2 is root in its user namespace,
// which owns the NAT namespace: nftables and policy routing work there without
// any privilege on the host.
import { closeSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { pipe, spawnInCage } from '@wirecage/netns';

// The tools live in sbin, which an unprivileged user's PATH often lacks.
const PATH = `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin`;

function readAll(fd: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = new Socket({ fd, readable: true, writable: false });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Runs `file args...` in the namespace with `input` on stdin; throws with its stderr unless it exits 0. */
export async function runInNetns(netnsFd: number, file: string, args: string[], input = ''): Promise<void> {
  const [inR, inW] = pipe();
  const [errR, errW] = pipe();
  try {
    // The input is a ruleset of a few hundred bytes: it fits the pipe, so it is written before the fork.
    if (input !== '') writeSync(inW, input);
  } finally {
    closeSync(inW);
  }
  let child;
  try {
    child = spawnInCage({ file, args, env: { PATH, LC_ALL: 'C' }, netnsFd, stdio: [inR, errW, errW] });
  } catch (err) {
    closeSync(errR);
    throw new Error(`cannot run ${file} in the NAT namespace: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(inR);
    closeSync(errW);
  }
  const [status, output] = await Promise.all([child.wait(), readAll(errR)]);
  if (status.code !== 0) {
    const how = status.code === null ? `was killed by ${status.signal}` : `exited with ${status.code}`;
    throw new Error(`${file} ${args.join(' ')} in the NAT namespace ${how}${output.trim() ? `: ${output.trim()}` : ''}`);
  }
}
