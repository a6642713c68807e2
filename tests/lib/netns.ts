import { randomInt } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOrThrow, type ExecOptions, type ExecResult } from './exec.js';
import { LabProcess, type SpawnOptions } from './process.js';
import { waitFor } from './wait.js';

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

const NETNS_DIR = '/run/netns';
export const IFNAMSIZ_MAX = 15;

export function assertIfname(ifname: string): void {
  if (ifname.length === 0 || ifname.length > IFNAMSIZ_MAX || !/^[A-Za-z0-9_.-]+$/.test(ifname)) {
    throw new Error(`interface name ${JSON.stringify(ifname)} must be 1-${IFNAMSIZ_MAX} chars of [A-Za-z0-9_.-]`);
  }
}

const isV6 = (addr: string): boolean => addr.includes(':');

/** A network namespace that belongs to a Lab. */
export class Netns {
  constructor(
    readonly lab: Lab,
    /** Kernel name, as `ip netns` knows it. */
    readonly name: string,
    /** Short name given by the test ("a", "srv"). */
    readonly label: string,
  ) {}

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

  /** Adds an address (CIDR). IPv6 addresses get `nodad` so they are usable at once. */
  async addAddress(ifname: string, cidr: string): Promise<void> {
    const args = ['addr', 'add', cidr, 'dev', ifname];
    if (isV6(cidr)) args.push('nodad');
    await this.ip(args);
  }

  async linkUp(ifname: string, mtu?: number): Promise<void> {
    const args = ['link', 'set', 'dev', ifname];
    if (mtu !== undefined) args.push('mtu', String(mtu));
    args.push('up');
    await this.ip(args);
  }

  /**
   * Waits until IPv6 is usable on a freshly up link. Until the kernel marks the device ready (its
   * link-local address appears) the first neighbour solicitation is held back for about a second.
   */
  async waitIpv6Ready(ifname: string, timeoutMs = 5_000): Promise<void> {
    await waitFor(async () => (await this.ip(['-6', 'addr', 'show', 'dev', ifname, 'scope', 'link'])).stdout.trim() !== '', {
      what: `IPv6 link-local address on ${ifname} in ${this.name}`,
      timeoutMs,
      intervalMs: 10,
    });
  }

  /** `ip route add <dest> [via <gw>] [dev <if>] [src <addr>]`; the family follows `dest`. */
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

export interface VethOptions {
  /** Interface names for the a and b ends. Default `veth<k>a` / `veth<k>b`. */
  names?: [string, string];
  /** CIDRs for the ends; default 198.18.<k>.1/24 and .2/24. `false` for none. */
  v4?: [string, string] | false;
  /** CIDRs for the ends; default fd7a:c0de:<k+1 in hex>::1/64 and ::2/64. `false` for none. */
  v6?: [string, string] | false;
  mtu?: number;
}

const tokensUsed = new Set<string>();

function namespacesOnMachine(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** 5 chars: pid-derived (other test processes) plus random (other labs in this process). */
function newToken(): string {
  const pidPart = (process.pid % 1296).toString(36).padStart(2, '0');
  const existing = namespacesOnMachine();
  for (;;) {
    const token = pidPart + randomInt(36 ** 3).toString(36).padStart(3, '0');
    if (!tokensUsed.has(token) && !existing.some((n) => n.startsWith(`wct${token}-`))) {
      tokensUsed.add(token);
      return token;
    }
  }
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
  private readonly nsByLabel = new Map<string, Netns>();
  private readonly pendingNs = new Set<string>();
  private readonly procs = new Set<LabProcess>();
  private readonly dirs = new Set<string>();
  private readonly cleanups: Cleanup[] = [];
  private vethCount = 0;
  private ifnameCount = 0;
  private teardownChain: Promise<void> = Promise.resolve();

  constructor() {
    this.token = newToken();
    this.id = `wct${this.token}`;
  }

  /** Kernel names of namespaces this lab created and has not yet deleted. */
  get namespaceNames(): string[] {
    return [...this.pendingNs];
  }

  get processes(): readonly LabProcess[] {
    return [...this.procs];
  }

  /** A netns named `wct<token>-<label>` with `lo` up. Label: 1-6 of [a-z0-9]. */
  async namespace(label: string): Promise<Netns> {
    if (!/^[a-z0-9]{1,6}$/.test(label)) throw new Error(`namespace label ${JSON.stringify(label)} must be 1-6 of [a-z0-9]`);
    if (this.nsByLabel.has(label)) throw new Error(`lab ${this.id} already has a namespace labelled ${label}`);
    const name = `${this.id}-${label}`;
    // Tracked only once `add` succeeded: a failed add leaves nothing, and if it failed because the
    // name exists, that namespace is not ours to delete.
    await runOrThrow('ip', ['netns', 'add', name]);
    this.pendingNs.add(name);
    const ns = new Netns(this, name, label);
    this.nsByLabel.set(label, ns);
    await ns.linkUp('lo');
    return ns;
  }

  get(label: string): Netns {
    const ns = this.nsByLabel.get(label);
    if (ns === undefined) throw new Error(`lab ${this.id} has no namespace labelled ${label}`);
    return ns;
  }

  /**
   * An interface name unique on the whole machine (wireguard-go's UAPI socket path is global):
   * `<prefix><token><n>`, at most 15 chars.
   */
  uniqueIfname(prefix = 'wg'): string {
    const name = `${prefix}${this.token}${this.ifnameCount++}`;
    assertIfname(name);
    return name;
  }

  /**
   * A veth pair from `a` to `b`, created directly inside the namespaces (never in the host's), with
   * addresses and both ends up. The k-th veth (from 0) gets 198.18.k.0/24 and fd7a:c0de:<k+1>::/64.
   */
  async veth(a: Netns, b: Netns, opts: VethOptions = {}): Promise<{ a: VethEnd; b: VethEnd }> {
    const k = this.vethCount++;
    if (k > 255) throw new Error('a lab supports at most 256 veth pairs with default addresses');
    const [nameA, nameB] = opts.names ?? [`veth${k}a`, `veth${k}b`];
    assertIfname(nameA);
    assertIfname(nameB);
    const v4 = opts.v4 === false ? null : (opts.v4 ?? [`198.18.${k}.1/24`, `198.18.${k}.2/24`]);
    const net6 = `fd7a:c0de:${(k + 1).toString(16)}::`;
    const v6 = opts.v6 === false ? null : (opts.v6 ?? [`${net6}1/64`, `${net6}2/64`]);
    await a.ip(['link', 'add', nameA, 'type', 'veth', 'peer', 'name', nameB, 'netns', b.name]);
    const ends: [VethEnd, VethEnd] = [
      { ns: a, ifname: nameA, v4: null, v6: null },
      { ns: b, ifname: nameB, v4: null, v6: null },
    ];
    for (const [i, end] of ends.entries()) {
      if (v4) {
        await end.ns.addAddress(end.ifname, v4[i]);
        end.v4 = v4[i].split('/')[0];
      }
      if (v6) {
        await end.ns.addAddress(end.ifname, v6[i]);
        end.v6 = v6[i].split('/')[0];
      }
      await end.ns.linkUp(end.ifname, opts.mtu);
    }
    if (v6) for (const end of ends) await end.ns.waitIpv6Ready(end.ifname);
    return { a: ends[0], b: ends[1] };
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
    const attempt = async (fn: () => Promise<unknown> | unknown): Promise<void> => {
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
    for (const name of [...this.pendingNs]) {
      await attempt(async () => {
        if (existsSync(join(NETNS_DIR, name))) {
          await this.killNamespaceStragglers(name);
          await runOrThrow('ip', ['netns', 'delete', name]);
        }
        this.pendingNs.delete(name);
        for (const [label, ns] of this.nsByLabel) if (ns.name === name) this.nsByLabel.delete(label);
      });
    }
    for (const dir of [...this.dirs]) {
      await attempt(async () => {
        await rm(dir, { recursive: true, force: true });
        this.dirs.delete(dir);
      });
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `lab ${this.id} teardown had ${errors.length} failures`);
  }

  /** Processes left in our namespace (e.g. children that outlived a tracked parent) are ours too. */
  private async killNamespaceStragglers(name: string): Promise<void> {
    const list = async (): Promise<number[]> =>
      (await runOrThrow('ip', ['netns', 'pids', name])).stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map(Number);
    let pids = await list();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
    await waitFor(async () => (pids = await list()).length === 0, {
      what: `processes ${pids.join(', ')} in namespace ${name} to die after SIGKILL`,
      timeoutMs: 5_000,
    });
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

