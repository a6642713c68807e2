// What the host's /proc says of a process, for tests that watch the cage's processes from outside.
import { readFileSync } from 'node:fs';

/** A process's children (the kernel's list, zombies included); none once it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A field of /proc/PID/status ("State", "PPid", "NSpid", "ShdPnd"...), pids as the host sees them. */
export function statusField(pid: number, field: string): string {
  const m = new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return m[1]!;
}
