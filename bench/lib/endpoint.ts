// The two kinds of tunnel endpoint the bench compares, behind one shape:
// wireguard-go (the anchor, Debian's build, configured with `wg`) and a
// `wirecage run` cage. For a cage the endpoint process is stage 2, the Node
// process that owns the UDP socket, the TUN and the engine; it is found as
// the descendant of the `wirecage` process whose argv runs `.../stage2.js`
// (wirecage -> wirecage-userns -> node stage2.js -> the command's init).
// Commands "in the cage" are run with `nsenter -n` into the network
// namespace of the cage's own process tree, so they use the cage's TUN
// exactly as the cage's command would.
import { realpathSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type ExecOptions, type ExecResult } from '@wirecage/tests/lib/exec.js';
import type { Netns } from '@wirecage/tests/lib/netns.js';
import type { LabProcess } from '@wirecage/tests/lib/process.js';
import { waitFor } from '@wirecage/tests/lib/wait.js';
import { wireguardGoBinary, type WireguardGoPeer } from '@wirecage/tests/lib/wireguard-go.js';
import { spawnWirecage } from '@wirecage/tests/lib/cage.js';
import { cmdline, descendants, exePath, netnsId, parentPid } from './procfs.js';
import type { EngineConfig } from './engine-peer.js';

const NODE = realpathSync(process.execPath);

export type EndpointKind = 'wireguard-go' | 'wirecage';

export interface Endpoint {
  kind: EndpointKind;
  /** The process whose CPU time and peak RSS are the endpoint's. */
  pid: number;
  /** The rest of the same program (wirecage's stage 1 and its userns helper), for a whole-program RSS. */
  otherPids: number[];
  /** Tunnel address of this side. */
  address: string;
  /** Runs a command in the network namespace where this side's tunnel interface lives. */
  exec: (cmd: string, args: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;
}

export function wireguardGoEndpoint(wg: WireguardGoPeer, address: string): Endpoint {
  const pid = wg.process.pid;
  if (pid === undefined) throw new Error(`wireguard-go ${wg.ifname} in ${wg.ns.name} has no pid (it failed to start)`);
  // `ip netns exec` execs, so the lab's pid is wireguard-go's own; check, since CPU figures hang on it.
  if (!cmdline(pid).some((a) => a.endsWith(wireguardGoBinary()))) {
    throw new Error(`pid ${pid} is not wireguard-go but ${cmdline(pid).join(' ')}`);
  }
  return { kind: 'wireguard-go', pid, otherPids: [], address, exec: (cmd, args, opts) => wg.ns.run(cmd, args, opts) };
}

export interface CageStart {
  ns: Netns;
  /** wg-quick file. */
  config: string;
  address: string;
  command: string[];
  /** Extra `wirecage run` flags (e.g. --workers N). */
  flags: string[];
}

/** A started cage whose endpoint is found but maybe not ready yet; `ready()` waits for its command. */
export interface StartingCage {
  process: LabProcess;
  ready(timeoutMs?: number): Promise<Endpoint>;
}

export function startCage(opts: CageStart): StartingCage {
  const proc = spawnWirecage(opts.ns, [
    '-c',
    opts.config,
    '--wait-handshake',
    '30',
    '--log-level',
    'error',
    ...opts.flags,
    '--',
    ...opts.command,
  ]);
  return {
    process: proc,
    async ready(timeoutMs = 45_000) {
      const found = await waitFor(
        () => {
          proc.assertRunning();
          const root = proc.pid!;
          const tree = descendants(root);
          // The userns helper's own argv names stage2.js too; stage 2 is the one that is node.
          const stage2 = tree.find((p) => {
            try {
              return exePath(p) === NODE && cmdline(p).some((a) => a.endsWith('/stage2.js'));
            } catch {
              return false;
            }
          });
          if (stage2 === undefined) return null;
          const hostNet = netnsId(stage2);
          // The first process of stage 2's subtree in another netns is the cage's init: it lives as long as the cage.
          const caged = descendants(stage2).find((p) => {
            try {
              return netnsId(p) !== hostNet;
            } catch {
              return false;
            }
          });
          if (caged === undefined) return null; // the command starts only after the handshake
          const helper = parentPid(stage2);
          return { stage2, caged, others: helper === root ? [root] : [root, helper] };
        },
        {
          what: `wirecage in ${opts.ns.name} to start its command (${opts.command.join(' ')})`,
          timeoutMs,
          intervalMs: 50,
          describe: () => proc.describe(),
        },
      );
      return {
        kind: 'wirecage',
        pid: found.stage2,
        otherPids: found.others,
        address: opts.address,
        exec: (cmd, args, execOpts) => run('nsenter', ['-t', String(found.caged), '-n', cmd, ...args], execOpts),
      };
    },
  };
}

const ENGINE_PEER = fileURLToPath(new URL('./engine-peer.ts', import.meta.url));

/** Starts engine-peer.ts in `ns` (config in a 0600 file of `dir`) and waits until its device is up. */
export async function startEnginePeer(ns: Netns, dir: string, address: string, cfg: EngineConfig): Promise<Endpoint> {
  const file = join(dir, `${cfg.ifname}.json`);
  await writeFile(file, JSON.stringify(cfg), { mode: 0o600 });
  const proc = ns.spawn(NODE, ['--import', 'tsx', ENGINE_PEER, file]);
  await waitFor(
    () => {
      proc.assertRunning();
      return /^ready \d+$/m.test(proc.output());
    },
    { what: `engine-peer in ${ns.name} to come up`, timeoutMs: 30_000, describe: () => proc.describe() },
  );
  const pid = proc.pid!;
  // `ip netns exec` execs: the lab's pid is node's own, whose CPU the figures count.
  if (exePath(pid) !== NODE) throw new Error(`pid ${pid} is not node but ${cmdline(pid).join(' ')}`);
  return { kind: 'wirecage', pid, otherPids: [], address, exec: (cmd, args, opts) => ns.run(cmd, args, opts) };
}
