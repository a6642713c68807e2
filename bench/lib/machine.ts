// The facts a reader needs to judge the figures: how big and how busy the
// machine was, and which builds ran.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { wireguardGoBinary } from '@wirecage/tests/lib/wireguard-go.js';

export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  kernel: string;
  node: string;
  wireguardGo: string;
  iperf3: string;
  /** Commit of the tree the bench ran from, with a note when packages/ had uncommitted changes. */
  commit: string;
  loadStart: number[];
  loadEnd?: number[];
}

function firstLine(cmd: string, args: string[], fallback: string): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return (
      out
        .split('\n')
        .find((l) => l.trim() !== '')
        ?.trim() ?? fallback
    );
  } catch {
    return fallback;
  }
}

export function machineInfo(repoDir: string): MachineInfo {
  const commit = firstLine('git', ['-C', repoDir, 'rev-parse', '--short', 'HEAD'], 'unknown');
  const dirty = firstLine('git', ['-C', repoDir, 'status', '--porcelain', '--', 'packages'], '') !== '';
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown CPU',
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    wireguardGo: `${firstLine(wireguardGoBinary(), ['--version'], 'unknown')} (${wireguardGoBinary()})`,
    iperf3: firstLine('iperf3', ['--version'], 'unknown'),
    commit: dirty ? `${commit} (with uncommitted changes in packages/)` : commit,
    loadStart: os.loadavg(),
  };
}
