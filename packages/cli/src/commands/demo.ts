import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command } from '@oclif/core';
import { DemoLab, SERVER_TUNNEL_V4, SERVER_TUNNEL_V6, WEB_PORT } from '../demo/lab.js';

const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

export default class Demo extends Command {
  static override summary = 'Show wirecage working in a private lab (needs root; touches nothing outside the lab).';
  static override description = `Builds two network namespaces joined by a veth pair, starts wireguard-go
(Debian's) and a web server in one, writes a wg-quick config for it, and runs
a real \`wirecage run\` from the other: the caged command lists its
interfaces and routes, fetches the web page over IPv4 and IPv6 through the
tunnel, and fails to reach anything else. Then everything is torn down.`;

  async run(): Promise<void> {
    if (process.getuid?.() !== 0) this.error('the demo builds network namespaces and needs root: sudo wirecage demo', { exit: 1 });
    const lab = new DemoLab();
    const say = (s: string) => process.stdout.write(`\n== ${s}\n`);
    let code = 1;
    try {
      say(`building the lab: namespaces ${lab.client} and ${lab.server}, wireguard-go and a web server in ${lab.server}`);
      const { configPath } = await lab.up();
      const script = [
        'echo "inside the cage: uid $(id -u), WIRECAGE=$WIRECAGE WIRECAGE_TUN=$WIRECAGE_TUN"',
        'echo "interfaces:"; ip -o link | awk \'{print "  " $2}\'',
        'echo "routes:"; ip route | sed "s/^/  /"; ip -6 route | sed "s/^/  /"',
        `echo "GET http://${SERVER_TUNNEL_V4}:${WEB_PORT}/ :"; curl -sS --max-time 5 http://${SERVER_TUNNEL_V4}:${WEB_PORT}/ | sed "s/^/  /"`,
        `echo "GET http://[${SERVER_TUNNEL_V6}]:${WEB_PORT}/ :"; curl -sS --max-time 5 "http://[${SERVER_TUNNEL_V6}]:${WEB_PORT}/" | sed "s/^/  /"`,
        'echo "the lab host 198.18.77.1 outside the tunnel:"; ping -c1 -W1 198.18.77.1 >/dev/null 2>&1 && echo "  reachable (LEAK)" || echo "  unreachable, as it should be"',
        'exit 7',
      ].join('; ');
      say(`wirecage run -c ${configPath} -- sh -c '...'`);
      const started = performance.now();
      code = await new Promise<number>((resolve) => {
        const p = spawn('ip', ['netns', 'exec', lab.client, process.execPath, BIN, 'run', '-c', configPath, '--', 'sh', '-c', script], { stdio: 'inherit' });
        p.on('exit', (c, s) => resolve(c ?? 128));
      });
      const ms = performance.now() - started;
      say(`wirecage exited with ${code} (the command's own status) after ${ms.toFixed(0)} ms, handshake included`);
      say(`wg show on the wireguard-go side`);
      process.stdout.write(lab.wgShow());
      code = code === 7 ? 0 : 1;
    } catch (err) {
      process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    } finally {
      say('tearing the lab down');
      await lab.down();
    }
    process.exitCode = code;
  }
}
