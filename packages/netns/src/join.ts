// Joining a running cage (native/join/main.cc): a command started beside the
// ones already there, in their user, mount, network and pid namespaces, by
// setns through a pidfd of a process of the cage, done by a fresh image forked
// (or exec'd) from the caller: setns of a user namespace needs a
// single-threaded process. Also the two checks a cage's control socket needs
// (the peer's credentials, a name lock that dies with its holder) and pidfds
// of processes that are not our children, watched for their exit.
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { native, nativeDir } from './native.js';
import { NetnsError } from './errors.js';
import { CagedProcess } from './spawn.js';
import { watchReadable } from './sockets.js';

/** The program that joins a cage and relays for the command (see native/join/main.cc). */
export const joinProgram = join(nativeDir, 'wirecage-join');
/** The program that holds a named cage's namespaces while commands come and go (native/join/hold.cc). */
export const holdProgram = join(nativeDir, 'wirecage-hold');

export interface JoinPlan {
  /** Program to run; without a '/', searched in the PATH of `env`. */
  file: string;
  /** Arguments after argv[0]. */
  args?: string[];
  /** Complete environment of the command. */
  env: Record<string, string | undefined>;
  /** Changed to after entering the cage's mount namespace (whose root we land in otherwise). */
  cwd?: string;
  /** Ids in the cage's user namespace (only ids it maps work). */
  user?: { uid: number; gid: number; groups?: number[] };
  /** As the cage's first command: no capability now or ever. */
  dropCapabilities?: boolean;
  noNewPrivs?: boolean;
  /** A session of its own; with a terminal on stdin, a pseudo-terminal relayed to it. */
  newSession?: boolean;
}

interface NativeJoinPlan {
  file: string;
  argv: string[];
  env: string[];
  cwd?: string;
  uid?: number;
  gid?: number;
  groups?: number[];
  dropCapabilities?: boolean;
  noNewPrivs?: boolean;
  newSession?: boolean;
}

interface JoinAddon {
  pidfdOpen(pid: number): number;
  flockExclusive(fd: number): boolean;
  peerCredentials(fd: number): PeerCredentials;
  execJoin(plan: NativeJoinPlan, helper: string, pidfd: number, keepFds: number[]): never;
  spawnJoin(plan: NativeJoinPlan, helper: string, pidfd: number): { pid: number; pidfd: number };
}

const addon = native as unknown as JoinAddon;

export interface PeerCredentials {
  pid: number;
  /** As this process's user namespace sees it (65534 for a uid it does not map). */
  uid: number;
  gid: number;
}

function nativePlan(p: JoinPlan): NativeJoinPlan {
  return {
    file: p.file,
    argv: [p.file, ...(p.args ?? [])],
    env: Object.entries(p.env)
      .filter((kv): kv is [string, string] => kv[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`),
    cwd: p.cwd,
    uid: p.user?.uid,
    gid: p.user?.gid,
    groups: p.user ? (p.user.groups ?? []) : undefined,
    dropCapabilities: p.dropCapabilities,
    noNewPrivs: p.noNewPrivs,
    newSession: p.newSession,
  };
}

/** A pidfd (close-on-exec) of `pid`; a NetnsError (ESRCH) when there is no such process. */
export function pidfdOpen(pid: number): number {
  return addon.pidfdOpen(pid);
}

/** Takes the exclusive flock of `fd` without waiting: false when another open file holds it. */
export function flockExclusive(fd: number): boolean {
  return addon.flockExclusive(fd);
}

/** Who is at the other end of a connected unix socket (SO_PEERCRED). */
export function peerCredentials(fd: number): PeerCredentials {
  return addon.peerCredentials(fd);
}

/**
 * Becomes wirecage-join (execve, keeping this pid): it joins the cage of `pidfd` and runs the
 * command, exiting as the command does, or with 125/126/127 and a `wirecage:` line on stderr when
 * it cannot. `keepFds` stay open in it (not in the command) for as long as it runs. Returns only
 * by throwing (the program missing).
 */
export function execJoin(plan: JoinPlan, pidfd: number, keepFds: number[] = []): never {
  return addon.execJoin(nativePlan(plan), joinProgram, pidfd, keepFds);
}

/** Forks wirecage-join for `plan` in the cage of `pidfd`; the process exits as the command does. */
export function spawnJoin(plan: JoinPlan, pidfd: number): CagedProcess {
  const { pid, pidfd: own } = addon.spawnJoin(nativePlan(plan), joinProgram, pidfd);
  return new CagedProcess(pid, own);
}

/**
 * Calls `onExit` once when the process of `pidfd` (any process, not only a child) has exited,
 * and closes the pidfd; stop() closes it without calling.
 */
export function watchExit(pidfd: number, onExit: () => void): { stop(): void } {
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    watcher.stop();
    closeSync(pidfd);
  };
  const watcher = watchReadable(pidfd, (err: NetnsError | null) => {
    close();
    // A pidfd is readable once its process exits; an error means it can no longer be watched either.
    void err;
    onExit();
  });
  return { stop: close };
}
