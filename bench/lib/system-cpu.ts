// The whole machine's busy CPU time (all CPUs: user, nice, system, irq,
// softirq, steal), from /proc/stat. Conntrack works in the kernel, in the
// context of whichever process or softirq moves the packet (the caged iperf3's
// send, the cage's TUN write, ksoftirqd), so no one endpoint's CPU shows its
// cost: only the machine's total does, other load included.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

export function busyCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user already)
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLK_TCK;
}
