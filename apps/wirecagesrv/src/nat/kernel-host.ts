// What the kernel NAT changes in the namespace the server runs in, and how it
// puts it back: the forwarding sysctls, its nftables table and the policy
// routing for port forwards. The previous sysctl values are written into the
// table's comment, so a start after a crash (SIGKILL, power loss) finds the
// stale table, restores forwarding as it was before that run, and removes it.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { FORWARD_MARK, FORWARD_ROUTE_TABLE, KERNEL_NFT_TABLE, forwardRouting } from './kernel-rules.js';

// nft, ip and conntrack live in sbin, which a service's PATH may lack.
const PATH = `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin`;
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

export const SYSCTL_FORWARD4 = '/proc/sys/net/ipv4/ip_forward';
export const SYSCTL_FORWARD6 = '/proc/sys/net/ipv6/conf/all/forwarding';

/** Null when this process may run the kernel NAT, else why not (for a one-line refusal). */
export function kernelNatRefusal(status = readFileSync('/proc/self/status', 'utf8')): string | null {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(status);
  const caps = m ? BigInt(`0x${m[1]}`) : 0n;
  const missing = [
    [CAP_NET_ADMIN, 'CAP_NET_ADMIN (TUN, addresses, nftables, forwarding)'],
    // Port forwards and the DNS forwarder open their sockets in the NAT's namespace by fd (setns), even when it is our own.
    [CAP_SYS_ADMIN, 'CAP_SYS_ADMIN (sockets opened in the NAT namespace by fd)'],
  ]
    .filter(([bit]) => (caps & (1n << BigInt(bit as number))) === 0n)
    .map(([, what]) => what as string);
  if (missing.length === 0) return null;
  return `--nat kernel changes this host's network (a TUN, forwarding, an nftables table) and needs ${missing.join(' and ')}: run it as root, or use --nat userspace (the default), which needs no privileges`;
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `nft`, `ip` or `conntrack` with `input` on stdin; never rejects on its exit status. */
export function tool(file: string, args: string[], input = ''): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env: { PATH, LC_ALL: 'C' }, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      if (err !== null && code === null && typeof (err as NodeJS.ErrnoException).code === 'string') {
        const pkg = file === 'nft' ? 'nftables' : file === 'conntrack' ? 'conntrack' : 'iproute2';
        reject(new Error(`cannot run ${file}: ${err.message} (the kernel NAT needs ${pkg} installed)`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}

/** Like tool(), but throws with the command and its stderr unless it exits 0. */
export async function toolOrThrow(file: string, args: string[], input = ''): Promise<ToolResult> {
  const r = await tool(file, args, input);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || 'no message'}`);
  return r;
}

/** The forwarding switches as they were: '0'/'1', or null when the host has no IPv6. */
export interface Forwarding {
  v4: string;
  v6: string | null;
}

export function readForwarding(): Forwarding {
  return {
    v4: readFileSync(SYSCTL_FORWARD4, 'utf8').trim(),
    v6: existsSync(SYSCTL_FORWARD6) ? readFileSync(SYSCTL_FORWARD6, 'utf8').trim() : null,
  };
}

export function writeForwarding(f: Forwarding): void {
  const set = (path: string, value: string) => {
    try {
      // Writing the value it already has still resets every interface's own switch: leave it alone then.
      if (readFileSync(path, 'utf8').trim() !== value) writeFileSync(path, `${value}\n`);
    } catch (err) {
      throw new Error(`cannot set ${path} to ${value}: ${(err as Error).message}`, { cause: err });
    }
  };
  set(SYSCTL_FORWARD4, f.v4);
  if (f.v6 !== null) set(SYSCTL_FORWARD6, f.v6);
}

/** The table's comment: who made it, and the forwarding switches to restore. */
export function stateComment(pid: number, before: Forwarding): string {
  return `wirecagesrv pid=${pid} ipv4_forward=${before.v4} ipv6_forward=${before.v6 ?? '-'}`;
}

export function parseStateComment(listing: string): { pid: number | null; before: Forwarding | null } {
  const m = /comment "wirecagesrv pid=(\d+) ipv4_forward=([01]) ipv6_forward=([01-])"/.exec(listing);
  if (!m) return { pid: null, before: null };
  return { pid: Number(m[1]), before: { v4: m[2]!, v6: m[3] === '-' ? null : m[3]! } };
}

function isLiveServer(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return argv.includes('wirecagesrv') || argv.includes('stage2/main.js');
  } catch {
    return false;
  }
}

/**
 * Removes what a run that did not stop cleanly left behind: its table (after
 * restoring forwarding from the table's comment) and its forward routing.
 * Refuses when the table belongs to a server still running here.
 */
export async function clearStaleKernelNat(): Promise<string | null> {
  const listed = await tool('nft', ['list', 'table', 'inet', KERNEL_NFT_TABLE]);
  let note: string | null = null;
  if (listed.code === 0) {
    const { pid, before } = parseStateComment(listed.stdout);
    if (pid !== null && isLiveServer(pid)) {
      throw new Error(
        `another wirecagesrv (pid ${pid}) runs a kernel NAT in this network namespace (nftables table inet ${KERNEL_NFT_TABLE}); ` +
          'one kernel NAT per namespace: stop that one first',
      );
    }
    if (before) writeForwarding(before);
    await toolOrThrow('nft', ['delete', 'table', 'inet', KERNEL_NFT_TABLE]);
    note =
      `removed the nftables table inet ${KERNEL_NFT_TABLE} left by a run that did not stop cleanly` +
      (before ? `, and set forwarding back to what it was before that run (IPv4 ${before.v4}, IPv6 ${before.v6 ?? 'absent'})` : '');
  }
  await removeForwardRouting();
  return note;
}

export async function installForwardRouting(): Promise<void> {
  await toolOrThrow('ip', ['-4', '-batch', '-'], forwardRouting(4));
  if (existsSync(SYSCTL_FORWARD6)) await toolOrThrow('ip', ['-6', '-batch', '-'], forwardRouting(6));
}

/** Removes our policy rules (every copy) and routing table; absent ones are no error. */
export async function removeForwardRouting(): Promise<void> {
  for (const family of ['-4', '-6']) {
    if (family === '-6' && !existsSync(SYSCTL_FORWARD6)) continue;
    for (let i = 0; i < 8; i++) {
      if ((await tool('ip', [family, 'rule', 'del', 'fwmark', String(FORWARD_MARK)])).code !== 0) break;
    }
    await tool('ip', [family, 'route', 'flush', 'table', String(FORWARD_ROUTE_TABLE)]);
  }
}

/** The table's counters right now (synchronous: read when a log line asks for them). */
export function listCountersSync(): string | null {
  try {
    return execFileSync('nft', ['-j', 'list', 'counters', 'table', 'inet', KERNEL_NFT_TABLE], {
      env: { PATH, LC_ALL: 'C' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
}

/**
 * Deletes the conntrack entries of the flows that `address` started, so
 * their replies are no longer translated back to it: returns how many. The
 * kernel keeps forwarded flows in conntrack only; `conntrack -D` is the way
 * to cut them (it exits 1 when none matched).
 */
export async function deleteConntrackFrom(address: string): Promise<number> {
  const r = await tool('conntrack', ['-D', '--orig-src', address]);
  const m = /(\d+) flow entries have been deleted/.exec(r.stderr);
  if (m) return Number(m[1]);
  if (r.code === 0 || r.code === 1) return 0;
  throw new Error(`conntrack -D --orig-src ${address} failed (exit ${r.code}): ${r.stderr.trim() || 'no message'}`);
}
