// The one namespace lab of the project (`@wirecage/netns/lab`): the package's own
// tests, @wirecage/tun's, the integration suites (tests/lib/netns.ts) and
// `wirecage demo` build their private networks with it.
//
// Namespaces are named (`ip netns add`): the suites and the demo run programs in
// them with `ip netns exec` and show their names. iproute2 makes them because a
// named namespace is a bind mount under /run/netns, which this addon does not do,
// and veth pairs because Rtnl cannot create links; everything else (lo and links
// up, MTUs, addresses, routes, link and address lists) goes through Rtnl on the
// namespace's fd: no subprocess, and the kernel's own error message.
import { execFile, execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { CleanupStack } from './cleanup-stack.js';
import { forget, killStragglers, killStragglersSync, track } from './lab-exit.js';
import { waitFor } from './lab-probes.js';
import { Rtnl, type RouteSpec } from './rtnl.js';

export * from './lab-certs.js';
export * from './lab-packets.js';
export * from './lab-postgres.js';
export * from './lab-probes.js';

const execFileAsync = promisify(execFile);
const NETNS_DIR = '/run/netns';
export const IFNAMSIZ_MAX = 15;
const RT_SCOPE_LINK = 253;

export function assertIfname(ifname: string): void {
  if (ifname.length === 0 || ifname.length > IFNAMSIZ_MAX || !/^[A-Za-z0-9_.-]+$/.test(ifname)) {
    throw new Error(`interface name ${JSON.stringify(ifname)} must be 1-${IFNAMSIZ_MAX} chars of [A-Za-z0-9_.-]`);
  }
}

/** `ip ...args`, synchronously: stdout, or an error that names the command and carries ip's stderr. */
function ipSync(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

export interface LabExecResult {
  stdout: string;
  stderr: string;
  /** Exit code, or null when the command died by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A named network namespace of a Lab, held open as an fd, with `lo` up. */
export class LabNetns {
  /** O_CLOEXEC fd of the namespace, for Rtnl, socketInNetns, Tun.open({ netnsFd }), spawnInCage... */
  readonly fd: number;
  private nl: Rtnl | null = null;
  private fdOpen = false;
  private gone = false;

  /** Use Lab.namespace(). */
  constructor(
    /** Kernel name, as `ip netns` knows it. */
    readonly name: string,
    /** The short name the lab was given ("a", "srv"). */
    readonly label: string,
  ) {
    // Tracked only once `add` succeeded: if it failed because the name exists, that namespace is not ours.
    ipSync(['netns', 'add', name]);
    track(name, () => this.destroy());
    try {
      this.fd = openSync(`${NETNS_DIR}/${name}`, 'r');
      this.fdOpen = true;
      this.rtnl.setUp('lo');
    } catch (err) {
      try {
        this.destroy();
      } catch {
        // Still tracked: the exit hook tries again. The error that matters is the first one.
      }
      throw err;
    }
  }

  get path(): string {
    return `${NETNS_DIR}/${this.name}`;
  }

  toString(): string {
    return this.name;
  }

  /** An rtnetlink socket in this namespace, open until the namespace goes. */
  get rtnl(): Rtnl {
    if (this.gone) throw new Error(`namespace ${this.name} is already removed`);
    this.nl ??= Rtnl.open(this.fd);
    return this.nl;
  }

  /** The argv that runs `cmd` in this namespace (`ip netns exec` execs it, so the pid is the command's own). */
  argv(cmd: string, ...args: string[]): [string, ...string[]] {
    return ['ip', 'netns', 'exec', this.name, cmd, ...args];
  }

  /** `ip -n <name> ...args`, synchronously; stdout, or an error with ip's stderr. */
  ip(...args: string[]): string {
    return ipSync(['-n', this.name, ...args]);
  }

  /** Runs a command in the namespace without blocking the event loop; never rejects on its exit status. */
  async exec(cmd: string, ...args: string[]): Promise<LabExecResult> {
    const [ip, ...ipArgs] = this.argv(cmd, ...args);
    try {
      const { stdout, stderr } = await execFileAsync(ip, ipArgs, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      return { stdout, stderr, code: 0, signal: null };
    } catch (err) {
      const e = err as { code?: unknown; signal?: NodeJS.Signals | null; stdout?: string; stderr?: string };
      if (typeof e.code === 'string') throw err; // ip itself could not run
      return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : null, signal: e.signal ?? null };
    }
  }

  /** Sets the MTU when given, then brings the link up. */
  linkUp(ifname: string, mtu?: number): void {
    if (mtu !== undefined) this.rtnl.setMtu(ifname, mtu);
    this.rtnl.setUp(ifname);
  }

  /** Adds an address (CIDR); IPv6 ones skip duplicate address detection, so they are usable at once. */
  addAddress(ifname: string, cidr: string): void {
    this.rtnl.addAddress(ifname, cidr);
  }

  addRoute(spec: RouteSpec): void {
    this.rtnl.addRoute(spec);
  }

  linkNames(): string[] {
    return this.rtnl.links().map((l) => l.name);
  }

  /**
   * Waits until IPv6 is usable on a freshly up link. Until the kernel marks the device ready (its
   * link-local address appears) the first neighbour solicitation is held back for about a second.
   */
  async waitIpv6Ready(ifname: string, timeoutMs = 5_000): Promise<void> {
    const index = this.rtnl.link(ifname).index;
    const ready = (): true | undefined =>
      this.rtnl.addresses(index).some((a) => a.family === 6 && a.scope === RT_SCOPE_LINK) ? true : undefined;
    await waitFor(`an IPv6 link-local address on ${ifname} in ${this.name}`, ready, timeoutMs);
  }

  /** Kills what still runs inside, waits until it is gone, then removes the namespace. Safe to call again. */
  async remove(): Promise<void> {
    if (this.gone) return;
    await killStragglers(this.name);
    this.unmount();
  }

  /**
   * remove() without the wait, for exit handlers and synchronous after-hooks: processes that were
   * still inside may be dying for a moment after the namespace is unmounted. Safe to call again.
   */
  destroy(): void {
    if (this.gone) return;
    killStragglersSync(this.name);
    this.unmount();
  }

  private unmount(): void {
    this.nl?.close();
    this.nl = null;
    // Closed once only: a retry must not close a number the process has given to something else since.
    if (this.fdOpen) closeSync(this.fd);
    this.fdOpen = false;
    ipSync(['netns', 'delete', this.name]);
    this.gone = true;
    forget(this.name);
  }

  get removed(): boolean {
    return this.gone;
  }
}

export interface VethEnd {
  ns: LabNetns;
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

export interface LabOptions {
  /** Lowercase start of every name the lab gives (namespaces, interfaces), 1-4 chars. Default 'wct'. */
  prefix?: string;
}

const tokensUsed = new Set<string>();

function namespacesOnMachine(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** 5 chars: pid-derived (other processes) plus random (other labs in this process), checked against /run/netns. */
function newToken(prefix: string): string {
  const pidPart = (process.pid % 1296).toString(36).padStart(2, '0');
  const existing = namespacesOnMachine();
  for (;;) {
    const token =
      pidPart +
      randomInt(36 ** 3)
        .toString(36)
        .padStart(3, '0');
    if (!tokensUsed.has(token) && !existing.some((n) => n.startsWith(`${prefix}${token}-`))) {
      tokensUsed.add(token);
      return token;
    }
  }
}

/**
 * A throw-away network: named namespaces (`<prefix><token>-<label>`), veth pairs between them,
 * addresses and routes. Construction does no I/O. dispose() runs the steps given to onDispose()
 * (newest first), then kills whatever still runs in the namespaces and removes them; every step is
 * tried even if one fails, and a second dispose() retries what is left. A namespace the process
 * did not dispose is removed when the process exits (see lab-exit.ts).
 */
export class Lab {
  /** Unique 5-char token; everything the lab names globally carries it. */
  readonly token: string;
  /** `<prefix><token>`: the start of the lab's namespace names. */
  readonly id: string;
  private readonly byLabel = new Map<string, LabNetns>();
  private readonly steps = new CleanupStack();
  private vethCount = 0;
  private ifnameCount = 0;

  constructor(options: LabOptions = {}) {
    const prefix = options.prefix ?? 'wct';
    if (!/^[a-z]{1,4}$/.test(prefix)) throw new Error(`lab prefix ${JSON.stringify(prefix)} must be 1-4 of [a-z]`);
    this.token = newToken(prefix);
    this.id = `${prefix}${this.token}`;
  }

  /** The lab's namespaces that are not removed yet, oldest first. */
  get namespaces(): LabNetns[] {
    return [...this.byLabel.values()].filter((ns) => !ns.removed);
  }

  /** A namespace named `<id>-<label>` with `lo` up. Label: 1-6 of [a-z0-9]. */
  namespace(label: string): LabNetns {
    if (!/^[a-z0-9]{1,6}$/.test(label)) throw new Error(`namespace label ${JSON.stringify(label)} must be 1-6 of [a-z0-9]`);
    if (this.byLabel.get(label)?.removed === false) throw new Error(`lab ${this.id} already has a namespace labelled ${label}`);
    const ns = new LabNetns(`${this.id}-${label}`, label);
    this.byLabel.set(label, ns);
    return ns;
  }

  get(label: string): LabNetns {
    const ns = this.byLabel.get(label);
    if (ns === undefined || ns.removed) throw new Error(`lab ${this.id} has no namespace labelled ${label}`);
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
   * addresses and both ends up. The k-th veth (from 0) gets 198.18.k.0/24 and fd7a:c0de:<k+1>::/64
   * unless told otherwise. Resolves once IPv6 is usable on both ends.
   */
  async veth(a: LabNetns, b: LabNetns, opts: VethOptions = {}): Promise<{ a: VethEnd; b: VethEnd }> {
    const k = this.vethCount++;
    const [nameA, nameB] = opts.names ?? [`veth${k}a`, `veth${k}b`];
    assertIfname(nameA);
    assertIfname(nameB);
    if (k > 255 && (opts.v4 === undefined || opts.v6 === undefined)) throw new Error('a lab has default addresses for 256 veth pairs only');
    const v4 = opts.v4 === false ? null : (opts.v4 ?? [`198.18.${k}.1/24`, `198.18.${k}.2/24`]);
    const net6 = `fd7a:c0de:${(k + 1).toString(16)}::`;
    const v6 = opts.v6 === false ? null : (opts.v6 ?? [`${net6}1/64`, `${net6}2/64`]);
    a.ip('link', 'add', nameA, 'type', 'veth', 'peer', 'name', nameB, 'netns', b.name);
    const ends: [VethEnd, VethEnd] = [
      { ns: a, ifname: nameA, v4: null, v6: null },
      { ns: b, ifname: nameB, v4: null, v6: null },
    ];
    for (const [i, end] of ends.entries()) {
      if (v4) {
        end.ns.addAddress(end.ifname, v4[i]!);
        end.v4 = v4[i]!.split('/')[0]!;
      }
      if (v6) {
        end.ns.addAddress(end.ifname, v6[i]!);
        end.v6 = v6[i]!.split('/')[0]!;
      }
      end.ns.linkUp(end.ifname, opts.mtu);
    }
    if (v6) for (const end of ends) await end.ns.waitIpv6Ready(end.ifname);
    return { a: ends[0], b: ends[1] };
  }

  /** A step for dispose(), run before the namespaces go (stop the lab's processes here). */
  onDispose(step: () => unknown): void {
    this.steps.push(step);
  }

  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    await this.steps.unwind((err) => errors.push(err));
    for (const ns of this.namespaces.reverse()) {
      try {
        await ns.remove();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `lab ${this.id}: ${errors.length} steps of its teardown failed`);
  }
}
