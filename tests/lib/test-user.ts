// An ordinary user for the labs that run wirecage without privilege: made by
// the test and removed at its teardown, with a home under /home when it needs
// one (the cage's /tmp is private, so files the command must reach cannot be
// in a lab temp dir), and /dev/net/tun opened to everyone for the run, as
// distributions ship it (a fresh machine may have it 0600).
import { chmod, chown, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runOrThrow } from './exec.js';
import type { Lab, Netns } from './netns.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

/** A system user with no home and no login shell, removed by the lab's teardown. */
export async function createTestUser(lab: Lab, name: string): Promise<TestUser> {
  await runOrThrow('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', name]);
  lab.onTeardown(async () => {
    await runOrThrow('userdel', [name]);
  });
  const uid = Number((await runOrThrow('id', ['-u', name])).stdout.trim());
  const gid = Number((await runOrThrow('id', ['-g', name])).stdout.trim());
  return { name, uid, gid };
}

/** The user's home under /home (0700, the user's), removed by the lab's teardown before the user is. */
export async function createHome(lab: Lab, user: TestUser): Promise<string> {
  const home = join('/home', user.name);
  await mkdir(home, { mode: 0o700 });
  lab.onTeardown(() => rm(home, { recursive: true, force: true }));
  await chown(home, user.uid, user.gid);
  return home;
}

/** `setpriv` arguments that run what follows as `user`, with no supplementary groups and no capabilities. */
export function asUserArgs(user: TestUser): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
}

const TUN_DEVICE = '/dev/net/tun';

/** Opens /dev/net/tun to everyone for the lab's life, then restores its mode. */
export async function openTunToEveryone(lab: Lab): Promise<void> {
  const oldMode = (await stat(TUN_DEVICE)).mode & 0o7777;
  if ((oldMode & 0o666) !== 0o666) {
    lab.onTeardown(() => chmod(TUN_DEVICE, oldMode));
    await chmod(TUN_DEVICE, 0o666);
  }
}

/** Fails with what to do when `user` cannot read `file` (a checkout under a 0700 parent). */
export async function assertUserReads(ns: Netns, user: TestUser, file: string): Promise<void> {
  const reach = await ns.run(asUserArgs(user)[0]!, [...asUserArgs(user).slice(1), 'test', '-r', file]);
  if (reach.code !== 0) {
    throw new Error(
      `${user.name} cannot read ${file}: the checkout's parent directories need o+x (.ci/run grants it; ` +
        'run `d=$(pwd -P); while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done` in the checkout)',
    );
  }
}
