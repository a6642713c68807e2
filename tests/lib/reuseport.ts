// A data plane's UDP sockets seen from outside: which processes hold the
// sockets of a namespace (ss), and whether another process may join a port's
// SO_REUSEPORT group. The kernel lets a socket into a group only when it was
// made by the same uid as the group's, so another user's process cannot take
// a share of the peers' packets (nor bind the port at all).
import { readFile } from 'node:fs/promises';
import type { Netns } from './netns.js';
import { asUserArgs, type TestUser } from './test-user.js';

export interface UdpSocketSeen {
  /** As ss prints it: "*:51820" (dual-stack), "0.0.0.0:51820", "[::]:51820". */
  local: string;
  port: number;
  /** The processes holding the socket (a socket still open in two processes lists both). */
  holders: { pid: number; fd: number; cmdline: string }[];
}

/** Every bound UDP socket of `ns`, with its holders' command lines. */
export async function udpSockets(ns: Netns): Promise<UdpSocketSeen[]> {
  const out = (await ns.runOrThrow('ss', ['-H', '-u', '-a', '-n', '-p'])).stdout;
  const seen: UdpSocketSeen[] = [];
  for (const line of out.split('\n').filter((l) => l.trim() !== '')) {
    const local = line.trim().split(/\s+/)[3]!;
    const holders = await Promise.all(
      [...line.matchAll(/pid=(\d+),fd=(\d+)/g)].map(async (m) => ({
        pid: Number(m[1]),
        fd: Number(m[2]),
        cmdline: (await readFile(`/proc/${m[1]}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim(),
      })),
    );
    seen.push({ local, port: Number(local.slice(local.lastIndexOf(':') + 1)), holders });
  }
  return seen;
}

// Binds [::]:PORT dual-stack with SO_REUSEPORT, as the data plane's sockets are bound, and prints
// "joined" or the errno's name.
const JOIN = `
import errno, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind(('::', int(sys.argv[1])))
    print('joined')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`;

/**
 * Tries to join `port`'s SO_REUSEPORT group in `ns` (and leaves at once), as `user` or, without one,
 * as the test's own uid: "joined", or the errno name ("EADDRINUSE").
 */
export async function joinReusePort(ns: Netns, port: number, user?: TestUser): Promise<string> {
  const python = ['python3', '-c', JOIN, String(port)];
  const [cmd, ...args] = user ? [...asUserArgs(user), ...python] : python;
  // Not the test's PATH: a python of root's own (pyenv) is not the other user's to run.
  const r = await ns.run(cmd!, args, { env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
  if (r.code !== 0) throw new Error(`the SO_REUSEPORT probe failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}
