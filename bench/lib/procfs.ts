// What the bench reads about endpoint processes from /proc. The CPU figures
// are the whole thread group's (the kernel sums live and exited threads into
// /proc/<pid>/stat), so worker threads and native I/O threads are included;
// children (cutime/cstime) are not: a cage's command is not its endpoint.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself hold spaces and parentheses. */
function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of the process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  // After comm: state(3) ppid(4) ... utime(14) stime(15); index = field number - 3.
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

export function parentPid(pid: number): number {
  return Number(statFields(pid)[1]);
}

/** VmHWM (peak resident set) in bytes. */
export function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`/proc/${pid}/status has no VmHWM line (a kernel thread or a zombie?)`);
  return Number(m[1]) * 1024;
}

export function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .filter((s) => s !== '');
}

/** `net:[4026532...]`: equal strings mean the same network namespace. */
export function netnsId(pid: number): string {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

/** Every live descendant of `root`, parents before children. Processes that vanish mid-scan are skipped. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let ppid: number;
    try {
      ppid = parentPid(Number(name));
    } catch {
      continue;
    }
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** The executable the process runs (`/proc/<pid>/exe`). */
export function exePath(pid: number): string {
  return readlinkSync(`/proc/${pid}/exe`);
}
