// CPU time of whole process trees, for the fleet bench's cost per
// registration: a wirecagesrv node is stage 1, its user-namespace helper and
// stage 2; PostgreSQL is the postmaster and a backend per connection. A
// process that exits between two readings takes its time with it (into its
// parent's children's time, which is not read): the pools' connections live
// as long as the nodes, so little is lost that way.
import { readdirSync } from 'node:fs';
import { cmdline, cpuSeconds, descendants } from './procfs.js';

/** utime + stime of `root` and every live descendant, in seconds; processes that vanish mid-read count 0. */
export function treeCpu(root: number): number {
  let sum = 0;
  for (const pid of [root, ...descendants(root)]) {
    try {
      sum += cpuSeconds(pid);
    } catch {
      // gone since the scan
    }
  }
  return sum;
}

/** The postmaster of the lab cluster whose socket is in `socketDir` (other clusters may run beside it). */
export function postmasterPid(socketDir: string): number {
  const arg = `unix_socket_directories=${socketDir}`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (cmdline(Number(name)).includes(arg)) return Number(name);
    } catch {
      // gone since the listing
    }
  }
  throw new Error(`no postgres process runs with ${arg}`);
}
