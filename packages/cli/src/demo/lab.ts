// The private lab `wirecage demo` builds: three network namespaces, a
// "client" (where wirecage runs), a "server" running `wirecagesrv up`, and
// an "internet" behind the server with a web server and a DNS server for
// web.lab. The server's NAT may reach the lab's internet (--allow-dest) and
// its DNS forwarder asks the lab's DNS server (--dns-upstream), so nothing
// leaves the lab. wirecage's config lives in a temporary XDG_CONFIG_HOME.
// Teardown stops every process and removes every namespace and file.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wirecagesrvCommand } from './server-bin.js';

export const SERVER_NAME = 'demo';
export const WEB_NAME = 'web.lab';
export const WEB_PORT = 8080;
/** The client-server link: a private range, which the server's egress policy refuses. */
export const CLIENT_LINK = '192.168.77.1';
export const SERVER_LINK = '192.168.77.2';
export const API_URL = `http://${SERVER_LINK}:8443`;
/** The lab's internet, behind the server. */
export const INTERNET = { net4: '10.77.0.0/24', net6: 'fd7a:77::/64', server4: '10.77.0.1', server6: 'fd7a:77::1', host4: '10.77.0.2', host6: 'fd7a:77::2' };
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
  readonly id = `wcd${process.pid % 100000}`;
  readonly client = `${this.id}-c`;
  readonly server = `${this.id}-s`;
  readonly internet = `${this.id}-i`;
  readonly dir = mkdtempSync(join(tmpdir(), 'wirecage-demo-'));
  /** The environment for wirecage: the lab's own config directory. */
  readonly env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(this.dir, 'config') };
  private readonly namespaces: string[] = [];
  private readonly procs: LabProc[] = [];
  private srv: LabProc | null = null;

  private spawnIn(ns: string, what: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): LabProc {
    const p = new LabProc(what, spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? { PATH: process.env.PATH } }));
    this.procs.push(p);
    return p;
  }

  private async linkReady(ns: string, ifname: string): Promise<void> {
    // IPv6 neighbour discovery waits until the kernel deems the link ready (its link-local address appears).
    await until(`IPv6 on ${ifname} in ${ns}`, () => sh('ip', ['-n', ns, '-6', 'addr', 'show', 'dev', ifname, 'scope', 'link']).trim() !== '', 5_000);
  }

  /** Namespaces, links, the lab's internet, and the "internet" and client web servers. */
  async network(): Promise<void> {
    for (const ns of [this.client, this.server, this.internet]) {
      sh('ip', ['netns', 'add', ns]);
      this.namespaces.push(ns);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['-n', this.client, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', this.server]);
    sh('ip', ['-n', this.client, 'addr', 'add', `${CLIENT_LINK}/24`, 'dev', 'veth0']);
    sh('ip', ['-n', this.server, 'addr', 'add', `${SERVER_LINK}/24`, 'dev', 'veth1']);
    sh('ip', ['-n', this.server, 'link', 'add', 'veth2', 'type', 'veth', 'peer', 'name', 'veth3', 'netns', this.internet]);
    const [p4, p6] = [INTERNET.net4.split('/')[1], INTERNET.net6.split('/')[1]];
    for (const [ns, ifname, v4, v6] of [[this.server, 'veth2', INTERNET.server4, INTERNET.server6], [this.internet, 'veth3', INTERNET.host4, INTERNET.host6]] as const) {
      sh('ip', ['-n', ns, 'addr', 'add', `${v4}/${p4}`, 'dev', ifname]);
      sh('ip', ['-n', ns, 'addr', 'add', `${v6}/${p6}`, 'dev', ifname, 'nodad']);
    }
    for (const [ns, ifname] of [[this.client, 'veth0'], [this.server, 'veth1'], [this.server, 'veth2'], [this.internet, 'veth3']] as const) {
      sh('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
    }
    await this.linkReady(this.server, 'veth2');
    await this.linkReady(this.internet, 'veth3');

    const web = this.spawnIn(this.internet, 'the lab internet', process.execPath, [INTERNET_JS, String(WEB_PORT), `${WEB_NAME}=${INTERNET.host4},${INTERNET.host6}`]);
    // A web server on the client side: reachable from the client namespace, never from the cage.
    const local = this.spawnIn(this.client, 'the client-side web server', process.execPath, [INTERNET_JS, String(WEB_PORT)]);
    for (const p of [web, local]) await until(p.what, () => (p.assertRunning(), p.output.includes('ready\n')));
  }

  /** `wirecagesrv up` in the server namespace; resolves once its API answers. Returns the flags, for the output. */
  async startServer(): Promise<string[]> {
    const tokenFile = join(this.dir, 'token');
    writeFileSync(tokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    const flags = ['--wg-listen', `${SERVER_LINK}:51820`, '--api-listen', `${SERVER_LINK}:8443`, '--subnet6', SUBNET6,
      '--allow-dest', INTERNET.net4, '--allow-dest', INTERNET.net6, '--dns-upstream', INTERNET.host4,
      // Plain HTTP on the lab's private link: the token never leaves the lab's namespaces.
      '--insecure-http'];
    const [cmd, ...lead] = wirecagesrvCommand();
    this.srv = this.spawnIn(this.server, 'wirecagesrv up', cmd!, [...lead, 'up', ...flags, '--auth-token-file', tokenFile,
      '--state', join(this.dir, 'server', 'registry.db'), '--log-level', 'warn'], { PATH: process.env.PATH, HOME: this.dir });
    const srv = this.srv;
    await until('the wirecagesrv API', () => {
      srv.assertRunning();
      try {
        return sh('ip', ['netns', 'exec', this.client, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `${API_URL}/healthz`]) === '200';
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
    await Promise.all(this.procs.map((p) => p.stop()));
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        // Whatever a lab process left behind in its namespace goes with it.
        for (const pid of sh('ip', ['netns', 'pids', ns]).split('\n').filter((l) => l.trim() !== '')) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
        sh('ip', ['netns', 'delete', ns]);
      } catch (err) {
        process.stderr.write(`demo: could not remove namespace ${ns}: ${(err as Error).message}\n`);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
