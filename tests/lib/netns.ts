// The integration suites' view of the project's one lab (@wirecage/netns/lab):
// namespaces, veths, addresses and their removal come from there; this layer keeps
// the suites' async API, runs commands with ./exec.js (ExecResult, ExecError), and
// owns what only the suites have: long-running processes and temp dirs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab as CoreLab, type LabNetns, type VethOptions } from '@wirecage/netns/lab';
import { run, runOrThrow, type ExecOptions, type ExecResult } from './exec.js';
import { LabProcess, type SpawnOptions } from './process.js';

export { IFNAMSIZ_MAX, assertIfname, type VethOptions } from '@wirecage/netns/lab';

/** A namespace given either by kernel name or as a handle from a Lab. */
export type NsRef = string | { readonly name: string };

export function nsName(ns: NsRef): string {
  return typeof ns === 'string' ? ns : ns.name;
}

/** Runs a command inside a network namespace (`ip netns exec`); never rejects on exit status. */
export function nsRun(ns: NsRef, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', nsName(ns), cmd, ...args], opts);
}

/** Like nsRun, but throws ExecError (command + stderr) unless the command exits 0. */
export function nsRunOrThrow(ns: NsRef, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  return runOrThrow('ip', ['netns', 'exec', nsName(ns), cmd, ...args], opts);
}

const isV6 = (addr: string): boolean => addr.includes(':');

/** A network namespace that belongs to a Lab. */
/** The synchronous lab step as the promise this API has always returned: a failure rejects, it never throws. */
function settled<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err);
  }
}

export class Netns {
  /** Kernel name, as `ip netns` knows it. */
  readonly name: string;
  /** Short name given by the test ("a", "srv"). */
  readonly label: string;

  constructor(
    readonly lab: Lab,
    /** The namespace itself, for what this layer does not wrap (Rtnl, exec without ExecResult). */
    readonly core: LabNetns,
  ) {
    this.name = core.name;
    this.label = core.label;
  }

  /** O_CLOEXEC fd of the namespace (socketInNetns, Tun.open, ...), valid until teardown. */
  get fd(): number {
    return this.core.fd;
  }

  toString(): string {
    return this.name;
  }

  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return nsRun(this, cmd, args, opts);
  }

  runOrThrow(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return nsRunOrThrow(this, cmd, args, opts);
  }

  /** `ip -n <ns> ...`, throwing on failure. */
  ip(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return runOrThrow('ip', ['-n', this.name, ...args], opts);
  }

  /** A long-running process in this namespace, stopped by the lab's teardown. */
  spawn(cmd: string, args: readonly string[], opts?: SpawnOptions): LabProcess {
    return this.lab.spawn(this, cmd, args, opts);
  }

  /** Adds an address (CIDR). IPv6 addresses skip duplicate address detection, so they are usable at once. */
  addAddress(ifname: string, cidr: string): Promise<void> {
    return settled(() => this.core.addAddress(ifname, cidr));
  }

  linkUp(ifname: string, mtu?: number): Promise<void> {
    return settled(() => this.core.linkUp(ifname, mtu));
  }

  /** Until IPv6 is usable on a freshly up link (see LabNetns.waitIpv6Ready). */
  async waitIpv6Ready(ifname: string, timeoutMs = 5_000): Promise<void> {
    await this.core.waitIpv6Ready(ifname, timeoutMs);
  }

  /**
   * `ip route add <dest> [via <gw>] [dev <if>] [src <addr>]`; the family follows `dest`. With `ip`
   * rather than netlink (LabNetns.addRoute) because a refusal names the command the suites read.
   */
  async addRoute(dest: string, opts: { via?: string; dev?: string; src?: string; metric?: number }): Promise<void> {
    if (opts.via === undefined && opts.dev === undefined) throw new Error(`route to ${dest} needs a gateway (via) or a device (dev)`);
    const args = [isV6(dest) ? '-6' : '-4', 'route', 'add', dest];
    if (opts.via !== undefined) args.push('via', opts.via);
    if (opts.dev !== undefined) args.push('dev', opts.dev);
    if (opts.src !== undefined) args.push('src', opts.src);
    if (opts.metric !== undefined) args.push('metric', String(opts.metric));
    await this.ip(args);
  }

  /** Sets a per-namespace sysctl such as `net.ipv4.ip_forward`. */
  async sysctl(key: string, value: string | number): Promise<void> {
    await this.runOrThrow('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** One ICMP echo (v4 or v6 by address); resolves with the result, pass or fail. */
  ping(target: string, opts: { count?: number; waitS?: number; size?: number } = {}): Promise<ExecResult> {
    const args = ['-n', '-c', String(opts.count ?? 1), '-W', String(opts.waitS ?? 2)];
    if (opts.size !== undefined) args.push('-s', String(opts.size));
    args.push(target);
    return this.run('ping', args, { timeoutMs: ((opts.waitS ?? 2) + 2) * 1000 * (opts.count ?? 1) });
  }
}

export interface VethEnd {
  ns: Netns;
  ifname: string;
  /** Address without prefix length, or null if none was asked for. */
  v4: string | null;
  v6: string | null;
}

type Cleanup = () => Promise<void> | void;

/**
 * A throw-away network: namespaces, veths, addresses, processes and temp dirs that exist only for one
 * test suite. Construction does no I/O, so `after(() => lab.teardown())` is safe even when setup
 * fails half-way; teardown removes whatever was made and can be called any number of times.
 *
 *   describe('x', () => {
 *     const lab = new Lab();
 *     after(() => lab.teardown());
 *     ...
 *   });
 */
export class Lab {
  /** Unique 5-char token; everything the lab names globally carries it. */
  readonly token: string;
  /** `wct<token>`: prefix of the lab's namespace names. */
  readonly id: string;
  private readonly core = new CoreLab();
  private readonly nsByLabel = new Map<string, Netns>();
  private readonly procs = new Set<LabProcess>();
  private readonly dirs = new Set<string>();
  private readonly cleanups: Cleanup[] = [];
  private teardownChain: Promise<void> = Promise.resolve();

  constructor() {
    this.token = this.core.token;
    this.id = this.core.id;
  }

  /** Kernel names of namespaces this lab created and has not yet deleted. */
  get namespaceNames(): string[] {
    return this.core.namespaces.map((ns) => ns.name);
  }

  get processes(): readonly LabProcess[] {
    return [...this.procs];
  }

  /** A netns named `wct<token>-<label>` with `lo` up. Label: 1-6 of [a-z0-9]. */
  namespace(label: string): Promise<Netns> {
    return settled(() => {
      const ns = new Netns(this, this.core.namespace(label));
      this.nsByLabel.set(label, ns);
      return ns;
    });
  }

  get(label: string): Netns {
    const ns = this.nsByLabel.get(label);
    if (ns === undefined || ns.core.removed) throw new Error(`lab ${this.id} has no namespace labelled ${label}`);
    return ns;
  }

  /**
   * An interface name unique on the whole machine (wireguard-go's UAPI socket path is global):
   * `<prefix><token><n>`, at most 15 chars.
   */
  uniqueIfname(prefix = 'wg'): string {
    return this.core.uniqueIfname(prefix);
  }

  /**
   * A veth pair from `a` to `b`, created directly inside the namespaces (never in the host's), with
   * addresses and both ends up. The k-th veth (from 0) gets 198.18.k.0/24 and fd7a:c0de:<k+1>::/64.
   */
  async veth(a: Netns, b: Netns, opts: VethOptions = {}): Promise<{ a: VethEnd; b: VethEnd }> {
    const ends = await this.core.veth(a.core, b.core, opts);
    return { a: { ...ends.a, ns: a }, b: { ...ends.b, ns: b } };
  }

  /** Starts `cmd` inside `ns` via `ip netns exec` (which execs, so the pid is the command's own). */
  spawn(ns: NsRef, cmd: string, args: readonly string[], opts?: SpawnOptions): LabProcess {
    const p = new LabProcess('ip', ['netns', 'exec', nsName(ns), cmd, ...args], opts);
    this.procs.add(p);
    return p;
  }

  /** A fresh 0700 directory under the OS temp dir, removed by teardown. */
  async tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `${this.id}-`));
    this.dirs.add(dir);
    return dir;
  }

  /** Extra cleanup, run in reverse order after processes are stopped and before namespaces go. */
  onTeardown(fn: Cleanup): void {
    this.cleanups.push(fn);
  }

  /**
   * Stops processes (SIGTERM, then SIGKILL), runs cleanups, kills anything still inside the lab's
   * namespaces, deletes them, removes temp dirs. Every step is tried even if an earlier one fails;
   * the failures are thrown together at the end. Safe to call again (it retries what is left).
   */
  teardown(): Promise<void> {
    const next = this.teardownChain.then(() => this.teardownOnce());
    this.teardownChain = next.catch(() => {});
    return next;
  }

  private async teardownOnce(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    };

    await Promise.all(
      [...this.procs].map((p) =>
        attempt(async () => {
          await p.stop();
          this.procs.delete(p);
        }),
      ),
    );
    while (this.cleanups.length > 0) {
      const fn = this.cleanups.pop()!;
      await attempt(fn);
    }
    await attempt(() => this.core.dispose());
    for (const [label, ns] of this.nsByLabel) if (ns.core.removed) this.nsByLabel.delete(label);
    for (const dir of [...this.dirs]) {
      await attempt(async () => {
        await rm(dir, { recursive: true, force: true });
        this.dirs.delete(dir);
      });
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `lab ${this.id} teardown had ${errors.length} failures`);
  }
}

/** Runs `fn` with a fresh lab and always tears it down, keeping `fn`'s error if both fail. */
export async function withLab<T>(fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = new Lab();
  let result: T;
  try {
    result = await fn(lab);
  } catch (e) {
    await lab.teardown().catch((te: unknown) => {
      if (e instanceof Error) e.message += `\n(and lab teardown failed too: ${(te as Error).message})`;
    });
    throw e;
  }
  await lab.teardown();
  return result;
}
