import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { NetnsError } from './errors.js';
import { join } from 'node:path';
import { native, nativeDir } from './native.js';

/** The program spawnInCage's child execs at once (native/cage/): the cage is set up by a fresh image, not a copy of Node. */
export const cageSetupProgram = join(nativeDir, 'wirecage-cage');

export interface BindMount {
  /** Opened before any tmpfs is mounted, so it may lie where a private tmpfs goes (a socket in /tmp). */
  source: string;
  /** Must already exist (a file for a file, a directory for a directory), unless `create`. */
  target: string;
  readonly?: boolean;
  /** Make the target and its parents first (inside a private tmpfs, where nothing exists yet). */
  create?: boolean;
}

/** A private tmpfs, or a directory made inside one. Ids are this process's (the outer namespace's). */
export interface PrivateDir {
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** The command's own user namespace, nested in the caller's: maps as /proc/PID/uid_map lines. */
export interface CommandUserNamespace {
  uidMap: string;
  gidMap: string;
}

export interface CageSpawnOptions {
  /** Program to run; without a '/', searched in the PATH of `env` (execvp rules, no shell fallback). */
  file: string;
  /** Arguments after argv[0]. */
  args?: string[];
  /** argv[0]; defaults to `file`. */
  argv0?: string;
  /** Complete environment of the command; defaults to process.env. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Network namespace to enter (setns) before anything else. */
  netnsFd?: number;
  /** Bind mounts, made in a private mount namespace of the command's own. */
  mounts?: BindMount[];
  /** Fresh tmpfs mounts (a private /tmp, /run...), made before the bind mounts; missing paths are skipped. */
  tmpfs?: PrivateDir[];
  /** Directories made (mkdir -p, then chown and chmod) after the tmpfs mounts, before the bind mounts. */
  dirs?: PrivateDir[];
  /** Written under /proc/sys after entering netnsFd, so for that network namespace ("net/ipv4/ping_group_range"). */
  sysctls?: { path: string; value: string }[];
  /** Paths to make empty: a read-only empty tmpfs over a directory, /dev/null over anything else. Missing paths are skipped. */
  hide?: string[];
  /**
   * Run the command in a user namespace of its own, nested in this process's (needs pidNamespace:
   * init writes the maps). Its copy of the mount namespace is then locked by the kernel (no mount made
   * here can be undone from inside) and it holds no capability over the namespaces this process owns.
   */
  userns?: CommandUserNamespace;
  /** Empty the command's capability bounding and ambient sets: it can never hold a capability. */
  dropCapabilities?: boolean;
  /** PR_SET_NO_NEW_PRIVS: no setuid bit or file capability raises the command's privileges. */
  noNewPrivs?: boolean;
  /**
   * A session of the command's own (with pidNamespace): when stdin is a terminal the command gets a
   * pseudo-terminal of its own that the relay copies to and from the caller's (raw while it runs,
   * window size passed on), so nothing it does with TIOCSTI reaches the caller's terminal; otherwise
   * it has no controlling terminal at all (setsid).
   */
  newSession?: boolean;
  /** A fresh read-only sysfs over /sys, of the network namespace entered (the host's lists the host's interfaces). */
  sysfs?: boolean;
  /**
   * With pidNamespace: /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus and /proc/fs read-only.
   * Uid 0 of the host may write them by file mode alone, capabilities or not (core_pattern runs a
   * helper as root outside every namespace): set it when the command runs as the host's root.
   */
  readOnlyKernelFiles?: boolean;
  /** Drop to this identity before execve (supplementary groups, then gid, then uid). */
  user?: { uid: number; gid: number; groups?: number[] };
  /** fds to become the command's 0, 1, 2; -1 (default) keeps this process's own. */
  stdio?: [number, number, number];
  /**
   * Run the command as pid 2 of a new pid namespace (with its own /proc; implies the private mount
   * namespace) under a minimal init, so that everything it starts dies with it or with this process.
   * The returned pid is then a relay outside the namespace: it forwards SIGTERM, SIGINT, SIGHUP,
   * SIGQUIT, SIGWINCH, SIGUSR1 and SIGUSR2 and exits as the command did.
   */
  pidNamespace?: boolean;
  /**
   * With pidNamespace: once the command has exited, init ends what is left in the namespace and
   * then keeps the network namespace, for at most this many milliseconds, until no TCP connection in
   * it owes its peer data or a FIN (closed sockets outlive their processes as orphans, and a peer
   * would never see their end if the namespace went at once). Default 0: init exits at once.
   */
  lingerMs?: number;
}

export type ExitStatus = { code: number; signal: null } | { code: null; signal: NodeJS.Signals };

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function signalNumber(signal: NodeJS.Signals | number): number {
  const n = typeof signal === 'number' ? signal : constants.signals[signal];
  if (n === undefined) throw new TypeError(`unknown signal ${signal}`);
  return n;
}

/** A command running in the cage, watched through its pidfd. */
export class CagedProcess {
  private exit: Promise<ExitStatus> | undefined;
  private done = false;

  constructor(
    readonly pid: number,
    private readonly pidfd: number,
  ) {}

  /**
   * Resolves when the command exits. The wait sits on the event loop (the pidfd is polled),
   * never on a thread-pool thread. Always call it: it reaps the process and closes the pidfd.
   */
  wait(): Promise<ExitStatus> {
    this.exit ??= new Promise((resolve, reject) => {
      native.waitPidfd(this.pidfd, (errno, code, signal) => {
        this.done = true;
        closeSync(this.pidfd);
        if (errno !== null) reject(new NetnsError(errno, 'waitid', `waiting for pid ${this.pid}`));
        else if (code !== null) resolve({ code, signal: null });
        else resolve({ code: null, signal: signalNames.get(signal ?? 0) ?? (`SIG${signal}` as NodeJS.Signals) });
      });
    });
    return this.exit;
  }

  /** Sends a signal through the pidfd (no pid-reuse race). Returns false once the command has been reaped. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done) return false;
    native.pidfdSendSignal(this.pidfd, signalNumber(signal));
    return true;
  }
}

/**
 * Forks a command into the cage. The child execs wirecage-cage at once (none of this process's
 * memory stays next to the command), which does: setns(netnsFd), sysctls, a private mount namespace
 * (tmpfs, bind mounts, hidden paths), chdir, optionally a pid namespace under a minimal init and a
 * user namespace of the command's own, privilege drop, parent-death SIGKILL, every fd above 2
 * closed, execve. Throws a NetnsError (syscall says which step failed; 'execve' for a missing or
 * non-executable program) if the command never started.
 */
export function spawnInCage(options: CageSpawnOptions): CagedProcess {
  const env = options.env ?? process.env;
  const { pid, pidfd } = native.spawn(
    {
      file: options.file,
      argv: [options.argv0 ?? options.file, ...(options.args ?? [])],
      env: Object.entries(env)
        .filter((kv): kv is [string, string] => kv[1] !== undefined)
        .map(([k, v]) => `${k}=${v}`),
      cwd: options.cwd,
      netnsFd: options.netnsFd,
      mounts: options.mounts,
      tmpfs: options.tmpfs,
      dirs: options.dirs,
      sysctls: options.sysctls,
      hide: options.hide,
      userns: options.userns,
      dropCapabilities: options.dropCapabilities,
      noNewPrivs: options.noNewPrivs,
      newSession: options.newSession,
      sysfs: options.sysfs,
      readOnlyKernelFiles: options.readOnlyKernelFiles,
      uid: options.user?.uid,
      gid: options.user?.gid,
      groups: options.user ? (options.user.groups ?? []) : undefined,
      stdio: options.stdio,
      pidNamespace: options.pidNamespace ?? false,
      lingerMs: options.lingerMs,
    },
    cageSetupProgram,
  );
  return new CagedProcess(pid, pidfd);
}

/** The shell convention: the exit code, or 128 + N for death by signal N. */
export function exitStatusToCode(status: ExitStatus): number {
  return status.code ?? 128 + signalNumber(status.signal);
}

/** wirecage's exit code for a spawn that failed: 127 not found, 126 not executable, 125 anything else. */
export function exitCodeForSpawnError(err: unknown): number {
  if (!(err instanceof NetnsError) || err.syscall !== 'execve') return 125;
  return err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 127 : 126;
}
