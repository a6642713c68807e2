// The private lab `wirecage demo` builds: three network namespaces, a
// "client" (where wirecage runs), a "server" running `wirecagesrv up`, and
// an "internet" behind the server with a web server and a DNS server for
// web.lab. The server's NAT may reach the lab's internet (--allow-dest) and
// its DNS forwarder asks the lab's DNS server (--dns-upstream), so nothing
// leaves the lab. wirecage's config lives in a temporary XDG_CONFIG_HOME.
// The network is the project's one lab (@wirecage/netns/lab); teardown stops
// every process and removes every namespace and file, and the lab removes its
// namespaces also when the demo is interrupted.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabNetns } from '@wirecage/netns/lab';
import { wirecagesrvCommand } from './server-bin.js';

export const SERVER_NAME = 'demo';
export const WEB_NAME = 'web.lab';
export const WEB_PORT = 8080;
/** The client-server link: a private range, which the server's egress policy refuses. */
export const CLIENT_LINK = '192.168.77.1';
export const SERVER_LINK = '192.168.77.2';
export const API_URL = `http://${SERVER_LINK}:8443`;
/** The lab's internet, behind the server. */
export const INTERNET = {
  net4: '10.77.0.0/24',
  net6: 'fd7a:77::/64',
  server4: '10.77.0.1',
  server6: 'fd7a:77::1',
  host4: '10.77.0.2',
  host6: 'fd7a:77::2',
};
export const SUBNET6 = 'fd7a:de70::/64';

const CLI_BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const INTERNET_JS = fileURLToPath(new URL('./internet.js', import.meta.url));

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function until(what: string, ok: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process of the lab, with its output kept for error messages. */
class LabProc {
  output = '';
  constructor(
    readonly what: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.output += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.output += s));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  assertRunning(): void {
    if (!this.running) throw new Error(`${this.what} exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.output.trim()}`);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

export class DemoLab {
  private readonly lab = new Lab({ prefix: 'wcd' });
  readonly client = `${this.lab.id}-c`;
  readonly server = `${this.lab.id}-s`;
  readonly internet = `${this.lab.id}-i`;
  readonly dir = mkdtempSync(join(tmpdir(), 'wirecage-demo-'));
  /** The environment for wirecage: the lab's own config directory. */
  readonly env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(this.dir, 'config') };
  private srv: LabProc | null = null;

  private spawnIn(ns: LabNetns, what: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): LabProc {
    const [ip, ...ipArgs] = ns.argv(cmd, ...args);
    const p = new LabProc(what, spawn(ip, ipArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? { PATH: process.env.PATH } }));
    this.lab.onDispose(() => p.stop());
    return p;
  }

  /** Namespaces, links, the lab's internet, and the "internet" and client web servers. */
  async network(): Promise<void> {
    const [client, server, internet] = (['c', 's', 'i'] as const).map((label) => this.lab.namespace(label)) as [
      LabNetns,
      LabNetns,
      LabNetns,
    ];
    await this.lab.veth(client, server, { names: ['veth0', 'veth1'], v4: [`${CLIENT_LINK}/24`, `${SERVER_LINK}/24`], v6: false });
    const [p4, p6] = [INTERNET.net4.split('/')[1], INTERNET.net6.split('/')[1]];
    await this.lab.veth(server, internet, {
      names: ['veth2', 'veth3'],
      v4: [`${INTERNET.server4}/${p4}`, `${INTERNET.host4}/${p4}`],
      v6: [`${INTERNET.server6}/${p6}`, `${INTERNET.host6}/${p6}`],
    });

    const web = this.spawnIn(internet, 'the lab internet', process.execPath, [
      INTERNET_JS,
      String(WEB_PORT),
      `${WEB_NAME}=${INTERNET.host4},${INTERNET.host6}`,
    ]);
    // A web server on the client side: reachable from the client namespace, never from the cage.
    const local = this.spawnIn(client, 'the client-side web server', process.execPath, [INTERNET_JS, String(WEB_PORT)]);
    for (const p of [web, local]) await until(p.what, () => (p.assertRunning(), p.output.includes('ready\n')));
  }

  /** `wirecagesrv up` in the server namespace; resolves once its API answers. Returns the flags, for the output. */
  async startServer(): Promise<string[]> {
    const tokenFile = join(this.dir, 'token');
    writeFileSync(tokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    const flags = [
      '--wg-listen',
      `${SERVER_LINK}:51820`,
      '--api-listen',
      `${SERVER_LINK}:8443`,
      '--subnet6',
      SUBNET6,
      '--allow-dest',
      INTERNET.net4,
      '--allow-dest',
      INTERNET.net6,
      '--dns-upstream',
      INTERNET.host4,
      // Plain HTTP on the lab's private link: the token never leaves the lab's namespaces.
      '--insecure-http',
    ];
    const [cmd, ...lead] = wirecagesrvCommand();
    this.srv = this.spawnIn(
      this.lab.get('s'),
      'wirecagesrv up',
      cmd!,
      [...lead, 'up', ...flags, '--auth-token-file', tokenFile, '--state', join(this.dir, 'server', 'registry.db'), '--log-level', 'warn'],
      { PATH: process.env.PATH, HOME: this.dir },
    );
    const srv = this.srv;
    await until('the wirecagesrv API', () => {
      srv.assertRunning();
      try {
        return (
          sh('ip', [
            'netns',
            'exec',
            this.client,
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '--max-time',
            '1',
            `${API_URL}/healthz`,
          ]) === '200'
        );
      } catch {
        return false;
      }
    });
    return flags;
  }

  /** `wirecage add-server` into the lab's config directory, with the token from the environment (never argv). */
  addServer(): string {
    const token = readFileSync(join(this.dir, 'token'), 'utf8').trim();
    return execFileSync(process.execPath, [CLI_BIN, 'add-server', SERVER_NAME, API_URL, '--insecure-http'], {
      encoding: 'utf8',
      env: { ...this.env, WIRECAGE_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** The client-side web page, fetched from the client namespace itself (outside any cage). */
  clientSidePage(): string {
    return sh('ip', ['netns', 'exec', this.client, 'curl', '-sS', '--max-time', '3', `http://${CLIENT_LINK}:${WEB_PORT}/`]).trim();
  }

  /** The server's output so far (warnings and errors), for a failed run. */
  serverOutput(): string {
    return this.srv?.output.trim() ?? '';
  }

  async down(): Promise<void> {
    try {
      await this.lab.dispose();
    } catch (err) {
      process.stderr.write(`demo: could not remove the whole lab ${this.lab.id}: ${(err as Error).message}\n`);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
