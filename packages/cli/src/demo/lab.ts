// The private lab `wirecage demo` builds: a "client" and a "server" network
// namespace joined by a veth, wireguard-go (from Debian) in the server
// namespace with a small web server behind it. Nothing touches the machine's
// own network; teardown removes every namespace, process and file.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';

export const SERVER_TUNNEL_V4 = '10.200.77.1';
export const CLIENT_TUNNEL_V4 = '10.200.77.2';
export const SERVER_TUNNEL_V6 = 'fd7a:de70::1';
export const CLIENT_TUNNEL_V6 = 'fd7a:de70::2';
export const WEB_PORT = 8080;

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class DemoLab {
  readonly id = `wcd${process.pid % 100000}`;
  readonly client = `${this.id}-c`;
  readonly server = `${this.id}-s`;
  readonly wgIf = `${this.id}s`;
  readonly dir = mkdtempSync(join(tmpdir(), 'wirecage-demo-'));
  private procs: ChildProcess[] = [];

  async up(): Promise<{ configPath: string }> {
    for (const ns of [this.client, this.server]) {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['-n', this.client, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', this.server]);
    sh('ip', ['-n', this.client, 'addr', 'add', '198.18.77.1/24', 'dev', 'veth0']);
    sh('ip', ['-n', this.server, 'addr', 'add', '198.18.77.2/24', 'dev', 'veth1']);
    sh('ip', ['-n', this.client, 'link', 'set', 'veth0', 'up']);
    sh('ip', ['-n', this.server, 'link', 'set', 'veth1', 'up']);

    const serverKey = generatePrivateKey();
    const clientKey = generatePrivateKey();
    const serverKeyFile = join(this.dir, 'server.key');
    writeFileSync(serverKeyFile, keyToBase64(serverKey) + '\n', { mode: 0o600 });

    const sock = `/var/run/wireguard/${this.wgIf}.sock`;
    this.procs.push(
      spawn('ip', ['netns', 'exec', this.server, 'wireguard-go', '-f', this.wgIf], {
        stdio: 'ignore',
        env: { PATH: process.env.PATH, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' },
      }),
    );
    await until(`wireguard-go's socket ${sock}`, () => existsSync(sock));
    sh('ip', ['netns', 'exec', this.server, 'wg', 'set', this.wgIf, 'private-key', serverKeyFile, 'listen-port', '51820',
      'peer', keyToBase64(publicKeyOf(clientKey)), 'allowed-ips', `${CLIENT_TUNNEL_V4}/32,${CLIENT_TUNNEL_V6}/128`]);
    sh('ip', ['-n', this.server, 'addr', 'add', `${SERVER_TUNNEL_V4}/24`, 'dev', this.wgIf]);
    sh('ip', ['-n', this.server, 'addr', 'add', `${SERVER_TUNNEL_V6}/64`, 'dev', this.wgIf, 'nodad']);
    sh('ip', ['-n', this.server, 'link', 'set', this.wgIf, 'up', 'mtu', '1420']);

    const web = `require('http').createServer((q, s) => s.end('hello from the lab web server, you came from ' + q.socket.remoteAddress + '\\n')).listen(${WEB_PORT}, '::')`;
    this.procs.push(spawn('ip', ['netns', 'exec', this.server, process.execPath, '-e', web], { stdio: 'ignore' }));
    await until('the lab web server', () => sh('ip', ['netns', 'exec', this.server, 'ss', '-Hltn', `sport = :${WEB_PORT}`]).trim() !== '');

    const configPath = join(this.dir, 'demo.conf');
    writeFileSync(
      configPath,
      [
        '[Interface]',
        `PrivateKey = ${keyToBase64(clientKey)}`,
        `Address = ${CLIENT_TUNNEL_V4}/32, ${CLIENT_TUNNEL_V6}/128`,
        `DNS = ${SERVER_TUNNEL_V4}`,
        '',
        '[Peer]',
        `PublicKey = ${keyToBase64(publicKeyOf(serverKey))}`,
        'Endpoint = 198.18.77.2:51820',
        `AllowedIPs = 10.200.77.0/24, fd7a:de70::/64`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    clientKey.fill(0);
    serverKey.fill(0);
    return { configPath };
  }

  wgShow(): string {
    return sh('ip', ['netns', 'exec', this.server, 'wg', 'show', this.wgIf]);
  }

  async down(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.all(this.procs.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : null)));
    for (const ns of [this.client, this.server]) {
      try {
        sh('ip', ['netns', 'delete', ns]);
      } catch {
        // not created
      }
    }
    rmSync(`/var/run/wireguard/${this.wgIf}.sock`, { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
