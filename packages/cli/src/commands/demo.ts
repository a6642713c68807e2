import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command } from '@oclif/core';
import { API_URL, CLIENT_LINK, DemoLab, INTERNET, SERVER_NAME, WEB_NAME, WEB_PORT } from '../demo/lab.js';

const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

/** The caged command: what the cage looks like, and what it can and cannot reach. */
const SCRIPT = [
  'echo "inside the cage: uid $(id -u), WIRECAGE=$WIRECAGE WIRECAGE_TUN=$WIRECAGE_TUN"',
  'echo "interfaces:"; ip -brief addr | awk \'{ printf "  %s", $1; for (i = 3; i <= NF; i++) printf " %s", $i; print "" }\'',
  'echo "routes:"; { ip route; ip -6 route; } | sed "s/^/  /"',
  'echo "resolvers (from the server):"; awk \'$1 == "nameserver" { print "  " $2 }\' /etc/resolv.conf',
  `echo "${WEB_NAME} resolves (through the server's DNS forwarder) to:"; getent ahosts ${WEB_NAME} | awk '$2 == "STREAM" { print "  " $1 }'`,
  `echo "GET http://${WEB_NAME}:${WEB_PORT}/ over IPv4:"; curl -4 -sS --max-time 5 http://${WEB_NAME}:${WEB_PORT}/ 2>&1 | sed "s/^/  /"`,
  `echo "GET http://${WEB_NAME}:${WEB_PORT}/ over IPv6:"; curl -6 -sS --max-time 5 http://${WEB_NAME}:${WEB_PORT}/ 2>&1 | sed "s/^/  /"`,
  `echo "a web server on the cage's own host, ${CLIENT_LINK}:${WEB_PORT}, outside the tunnel:"`,
  `curl -sS --max-time 3 -o /dev/null http://${CLIENT_LINK}:${WEB_PORT}/ 2>/dev/null && echo "  reachable (LEAK)" || echo "  unreachable, as it should be"`,
  'exit 7',
].join('\n');

export default class Demo extends Command {
  static override summary = 'Show wirecage working with wirecagesrv in a private lab (needs root; touches nothing outside the lab).';
  static override description = `Builds three network namespaces: a client, a server running \`wirecagesrv up\`,
and an "internet" behind it with a web server and a DNS server for ${WEB_NAME}.
Then \`wirecage add-server\` (into a temporary config directory) and a real
\`wirecage run ${SERVER_NAME}\` from the client: the caged command lists its
interfaces, routes and resolvers, fetches http://${WEB_NAME}:${WEB_PORT}/ by name over
IPv4 and IPv6 through the server's NAT and DNS forwarder, and fails to reach
a web server on its own host outside the tunnel. Then everything is torn down.`;

  async run(): Promise<void> {
    if (process.getuid?.() !== 0) this.error('the demo builds network namespaces and needs root: sudo wirecage demo', { exit: 1 });
    const lab = new DemoLab();
    const say = (s: string) => process.stdout.write(`\n== ${s}\n`);
    let code = 1;
    try {
      say(`lab: namespaces ${lab.client} (client), ${lab.server} (server), ${lab.internet} (internet: ${INTERNET.host4}, ${INTERNET.host6}, web and DNS)`);
      await lab.network();
      const flags = await lab.startServer();
      say(`wirecagesrv up ${flags.join(' ')} (in ${lab.server})`);
      say(`wirecage add-server ${SERVER_NAME} ${API_URL}: ${lab.addServer().trim()}`);
      say(`outside the cage, in ${lab.client}: GET http://${CLIENT_LINK}:${WEB_PORT}/: ${lab.clientSidePage()}`);
      say(`wirecage run ${SERVER_NAME} -- sh -c '...' (in ${lab.client})`);
      const started = performance.now();
      code = await new Promise<number>((resolve) => {
        const p = spawn('ip', ['netns', 'exec', lab.client, process.execPath, BIN, 'run', SERVER_NAME, '--', 'sh', '-c', SCRIPT], { stdio: 'inherit', env: lab.env });
        p.on('exit', (c) => resolve(c ?? 128));
      });
      const ms = performance.now() - started;
      say(`wirecage exited with ${code}, the command's own status, after ${ms.toFixed(0)} ms (registration and handshake included)`);
      if (code !== 7 && lab.serverOutput()) process.stderr.write(`wirecagesrv said:\n${lab.serverOutput()}\n`);
      code = code === 7 ? 0 : 1;
    } catch (err) {
      process.stderr.write(`demo failed: ${(err as Error).message}\n`);
      if (lab.serverOutput()) process.stderr.write(`wirecagesrv said:\n${lab.serverOutput()}\n`);
    } finally {
      say('tearing the lab down');
      await lab.down();
    }
    process.exitCode = code;
  }
}
