// What a running cage tells `wirecage ps` and `exec` about itself besides the
// tunnel's state (which the UAPI socket and the health file give): its name,
// where its tunnel came from, its addresses, when it started and which pid
// namespace its processes live in. Stage 2 writes it as `<tun>@<pid>.cage.json`
// in the runtime dir (0600, never through a link) once the cage's first
// process runs; a cage without one (an older wirecage) is listed with what the
// UAPI says. Names are claimed with a flock (namedCageFile 'lock') held by
// stage 2 for its life, so a killed cage never leaves its name taken.
import { closeSync, constants, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { WirecageError } from '../errors.js';
import { cageFile, namedCageFile } from './runtime-dir.js';

export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;

export function checkCageName(name: string): string {
  if (!NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new WirecageError(
      `${JSON.stringify(name)} is not a cage name: a name is 1 to 32 letters, digits, '_', '.' or '-' (and not . or ..)`,
      2,
    );
  }
  return name;
}

export interface CageFacts {
  name: string | null;
  /** The wg-quick file, the server NAME, or "--wg-* flags". */
  source: string;
  tun: string;
  addresses: string[];
  /** Endpoints as the user wrote them. */
  endpoints: string[];
  /** Wall-clock ms when the cage's first process started. */
  started: number;
  /** Inode of the cage's pid namespace: its processes are those in it (cageProcesses). */
  pidns: number;
  /** Host pids of wirecage's own processes in it (init, and a named cage's holder): not counted. */
  own: number[];
  /** --keep: the cage stays with no process until `wirecage stop`. */
  keep: boolean;
}

export function writeFacts(dir: string, stage2Pid: number, facts: CageFacts): string {
  const file = cageFile(dir, facts.tun, stage2Pid, 'cage.json');
  const temp = `${file}.new`;
  rmSync(temp, { force: true });
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${JSON.stringify(facts)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  return file;
}

export function readFacts(dir: string, tun: string, stage2Pid: number): CageFacts | null {
  try {
    const f = JSON.parse(readFileSync(cageFile(dir, tun, stage2Pid, 'cage.json'), 'utf8')) as CageFacts;
    return typeof f.pidns === 'number' && Array.isArray(f.own) ? f : null;
  } catch {
    return null;
  }
}

/** The inode of a process's namespace (`kind` as in /proc/PID/ns/), or null when it cannot be read. */
export function nsInode(pid: number, kind: 'pid' | 'pid_for_children' | 'net' | 'mnt' | 'user'): number | null {
  try {
    return statSync(`/proc/${pid}/ns/${kind}`).ino;
  } catch {
    return null;
  }
}

/**
 * Host pids of the processes in pid namespace `pidns` but `own`, zombies left out: a zombie runs
 * nothing, cannot be signalled, and its pidfd is readable already (watching it would spin until its
 * parent reaps it). Those of other users, whose namespaces we may not read, cannot be in a cage of
 * ours anyway.
 */
export function cageProcesses(pidns: number, own: readonly number[] = []): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (!own.includes(pid) && nsInode(pid, 'pid') === pidns && !isZombie(pid)) out.push(pid);
  }
  return out;
}

/** Exited, not yet reaped (state Z, or X while being reaped); a process gone meanwhile counts as one. */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which may hold spaces and parentheses: after the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** A process's children (the kernel's list, /proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process's command name, for messages. */
export function commName(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return `pid ${pid}`;
  }
}

export class NameTakenError extends WirecageError {
  override name = 'NameTakenError';
  constructor(name: string) {
    super(
      `a cage named ${name} is already running (wirecage ps lists it; wirecage exec ${name} -- CMD joins it, wirecage stop ${name} ends it)`,
      125,
    );
  }
}

/**
 * Takes the name: an fd holding the flock of `<NAME>.lock`, to keep open for the cage's life; a
 * NameTakenError when a running cage holds it.
 */
export async function claimName(dir: string, name: string): Promise<number> {
  const { flockExclusive } = await import('@wirecage/netns');
  const fd = openSync(namedCageFile(dir, name, 'lock'), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  let held = false;
  try {
    held = flockExclusive(fd);
  } finally {
    if (!held) closeSync(fd);
  }
  if (!held) throw new NameTakenError(name);
  return fd;
}

/** What a cage's facts are made of in its spec (spec.ts's CageSpec has it). */
export interface FactsSource {
  runtimeDir: string;
  source?: string;
  addresses: string[];
  peers: { endpoint?: string; endpointText?: string }[];
}

/** A cage's facts, started now: the spec's part and where its processes are. */
export function cageFacts(spec: FactsSource, tun: string, where: Pick<CageFacts, 'name' | 'pidns' | 'own' | 'keep'>): CageFacts {
  return {
    name: where.name,
    source: spec.source ?? '-',
    tun,
    addresses: spec.addresses,
    endpoints: spec.peers.map((p) => p.endpointText ?? p.endpoint ?? '').filter(Boolean),
    started: Date.now(),
    pidns: where.pidns,
    own: where.own,
    keep: where.keep,
  };
}

/**
 * The facts of an unnamed cage whose command runs under wirecage-cage's relay `relay` (its init is
 * the relay's child), removed when stage 2 exits. Best effort: `ps` lists the cage without them.
 */
export function recordUnnamedCage(spec: FactsSource, tun: string, relay: number): void {
  const pidns = nsInode(relay, 'pid_for_children');
  if (pidns === null) return;
  try {
    const file = writeFacts(spec.runtimeDir, process.pid, cageFacts(spec, tun, { name: null, pidns, own: childrenOf(relay), keep: false }));
    process.once('exit', () => rmSync(file, { force: true }));
  } catch {
    // ps shows the cage from its UAPI socket alone
  }
}
