// Helpers for the escape probes (tests/cage/escape.test.ts): the probe itself
// (a small C program built at run time), a test user, listeners outside the
// cage that record whatever reaches them, and an interactive shell under a
// pseudo-terminal that the test types into. The test user is test-user.ts's.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown } from 'node:fs/promises';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatCommand, runOrThrow } from './exec.js';
import type { Lab, Netns } from './netns.js';
import type { LabProcess } from './process.js';
import type { TestUser } from './test-user.js';
import { waitFor } from './wait.js';

const PROBE_SOURCE = fileURLToPath(new URL('../cage/fixtures/escape-probe.c', import.meta.url));

/** Compiles the probe into `dir` (mode 0755, so a test user can run it) and returns its path. */
export async function buildProbe(dir: string): Promise<string> {
  const out = join(dir, 'escape-probe');
  await runOrThrow('cc', ['-O1', '-Wall', '-o', out, PROBE_SOURCE], { timeoutMs: 60_000 });
  await chmod(out, 0o755);
  return out;
}

/** The probe's output, one attempt per line: `<action> <subject> <result...>`. */
export class ProbeReport {
  readonly lines: string[];
  constructor(readonly stdout: string) {
    this.lines = stdout.split(/\r?\n/);
  }

  /** The probe started and got through every action (so a refusal in its report is real). */
  get complete(): boolean {
    return this.lines.some((l) => l.startsWith('probe start ')) && this.lines.includes('probe end');
  }

  /** The probe's own pid, as it sees it. */
  get pid(): number {
    const l = this.lines.find((x) => x.startsWith('probe start '));
    return l === undefined ? -1 : Number(/ pid (\d+)/.exec(l)![1]);
  }

  /** Every line starting with these words, as the words after them. */
  all(...words: string[]): string[][] {
    const prefix = words.join(' ') + ' ';
    return this.lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length).split(' '));
  }

  /** The words after the first line starting with these words; throws when there is none. */
  get(...words: string[]): string[] {
    const found = this.all(...words)[0];
    if (found === undefined) throw new Error(`the probe reported no "${words.join(' ')}" line:\n${this.stdout}`);
    return found;
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The pid the command was started with (ip netns exec, setpriv and wirecage exec, so it stays). */
  pid: number;
}

/**
 * Runs a command to its end, like exec.run, but also tells its pid (the escape probes look for
 * that pid from inside the cage). Killed with its process group after `timeoutMs`.
 */
export function runWithPid(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${formatCommand(cmd, args)}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code, signal, pid: child.pid! });
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

const UDP_SINK = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => process.stdout.write('datagram ' + r.address + ':' + r.port + ' ' + JSON.stringify(m.toString()) + '\\n'));
s.bind(0, process.argv[1], () => process.stdout.write('listening ' + s.address().port + '\\n'));
`;

/** A UDP listener in a lab namespace that prints every datagram it receives. */
export class UdpSink {
  private sentinels = 0;
  private constructor(
    readonly ns: Netns,
    readonly address: string,
    readonly port: number,
    private readonly proc: LabProcess,
  ) {}

  static async start(ns: Netns, address: string): Promise<UdpSink> {
    const proc = ns.spawn(process.execPath, ['-e', UDP_SINK, address]);
    const port = await waitFor(
      () => {
        proc.assertRunning();
        const m = /^listening (\d+)$/m.exec(proc.output());
        return m && Number(m[1]);
      },
      { what: `a UDP listener on ${address} in ${ns.name}`, describe: () => proc.describe() },
    );
    return new UdpSink(ns, address, port, proc);
  }

  /** Every datagram received so far that the test did not send itself. */
  foreign(): string[] {
    return this.proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('datagram ') && !/"wct-sentinel-\d+"$/.test(l));
  }

  /**
   * Sends a datagram of the test's own from the listener's namespace and waits for it: a socket's
   * queue keeps arrival order, so whatever was sent to the listener before is in by then.
   */
  async settle(): Promise<void> {
    const text = `wct-sentinel-${++this.sentinels}`;
    await this.ns.runOrThrow('bash', ['-c', 'printf %s "$0" > "/dev/udp/$1/$2"', text, this.address, String(this.port)]);
    await waitFor(() => this.proc.output().includes(`"${text}"`), {
      what: `the sentinel datagram ${text} to reach ${this.address}:${this.port}`,
      describe: () => this.proc.describe(),
    });
  }
}

/**
 * A listening unix socket made by the test (outside any cage) that counts the connections it accepts.
 * The test's own connections (settle) announce themselves and are not counted.
 */
export class UnixSink {
  private accepted = 0;
  private sentinelsSeen = 0;
  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {}

  static async listen(lab: Lab, path: string, access: { mode?: number; owner?: TestUser } = {}): Promise<UnixSink> {
    const server = createServer();
    const sink = new UnixSink(path, server);
    server.on('connection', (sock) => {
      sink.accepted++;
      sock.on('error', () => {});
      sock.once('data', (d) => {
        if (d.toString().startsWith('wct-sentinel')) sink.sentinelsSeen++;
        sock.destroy();
      });
      sock.once('end', () => sock.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    lab.onTeardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    if (access.owner) await chown(path, access.owner.uid, access.owner.gid);
    await chmod(path, access.mode ?? 0o600);
    return sink;
  }

  /**
   * Connects once itself and waits until that connection is seen: the kernel hands out pending
   * connections in order, so any earlier one has been accepted by then. Returns how many
   * connections other than the test's own were accepted so far.
   */
  async settle(): Promise<number> {
    const want = this.sentinelsSeen + 1;
    const sock = connect(this.path, () => sock.end('wct-sentinel'));
    sock.on('error', () => {});
    await waitFor(() => this.sentinelsSeen >= want, { what: `the test's own connection to ${this.path} to be accepted` });
    return this.accepted - this.sentinelsSeen;
  }
}

/**
 * An interactive `sh -i` under `script`, so it has a pseudo-terminal as its controlling terminal,
 * and the test types into it line by line (each line only when the previous command is done).
 */
export class PtyShell {
  private readonly child: ChildProcess;
  private out = '';
  readonly exited: Promise<number | null>;

  constructor(lab: Lab, ns: Netns, prefix: readonly string[], env: NodeJS.ProcessEnv) {
    this.child = spawn('ip', ['netns', 'exec', ns.name, ...prefix, 'script', '-qec', 'sh -i', '/dev/null'], {
      env: { ...env, SHELL: '/bin/sh', TERM: 'dumb' },
      cwd: '/',
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.out += s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.out += s));
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
    lab.onTeardown(async () => {
      killGroup(this.child, 'SIGKILL');
      await this.exited;
    });
  }

  output(): string {
    return this.out;
  }

  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  async waitOutput(pattern: RegExp, what: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => pattern.test(this.out), { what, timeoutMs, describe: () => `terminal output so far:\n${this.out}` });
  }

  /** Waits for the shell to end; kills it after `timeoutMs`. */
  async end(timeoutMs = 10_000): Promise<number | null> {
    const timer = setTimeout(() => killGroup(this.child, 'SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
