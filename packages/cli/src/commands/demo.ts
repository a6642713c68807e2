import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';
import { DEMO_CHECKS, demoScript } from '../demo/checks.js';
import { API_URL, CLIENT_LINK, DemoLab, INTERNET, SERVER_NAME, WEB_NAME, WEB_PORT } from '../demo/lab.js';

const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

export default class Demo extends WirecageCommand {
  static override summary = 'Show wirecage working with wirecagesrv in a private lab (needs root; touches nothing outside the lab).';
  static override description = `Builds three network namespaces: a client, a server running \`wirecagesrv up\`,
and an "internet" behind it with a web server and a DNS server for ${WEB_NAME}.
Then \`wirecage add-server\` (into a temporary config directory) and a real
\`wirecage run ${SERVER_NAME}\` from the client: the caged command lists its
interfaces, routes and resolvers, fetches http://${WEB_NAME}:${WEB_PORT}/ by name over
IPv4 and IPv6 through the server's NAT and DNS forwarder, and fails to reach
a web server on its own host outside the tunnel. Then everything is torn down.

Each check the caged command makes prints "ok: WHAT" or "FAILED: WHAT"
(that the outside web server is unreachable is one of them).

Exit status: 0 when every check passed; 1 when one failed (the line "== check
failed: WHAT" names it), wirecage failed, or the lab could not be built.`;

  async run(): Promise<void> {
    if (process.getuid?.() !== 0) throw new WirecageError('the demo builds network namespaces and needs root: sudo wirecage demo');
    const lab = new DemoLab();
    const say = (s: string) => process.stdout.write(`\n== ${s}\n`);
    let code = 1;
    try {
      say(
        `lab: namespaces ${lab.client} (client), ${lab.server} (server), ${lab.internet} (internet: ${INTERNET.host4}, ${INTERNET.host6}, web and DNS)`,
      );
      await lab.network();
      const flags = await lab.startServer();
      say(`wirecagesrv up ${flags.join(' ')} (in ${lab.server})`);
      say(`wirecage add-server ${SERVER_NAME} ${API_URL}: ${lab.addServer().trim()}`);
      say(`outside the cage, in ${lab.client}: GET http://${CLIENT_LINK}:${WEB_PORT}/: ${lab.clientSidePage()}`);
      say(`wirecage run ${SERVER_NAME} -- sh -c '...' (in ${lab.client})`);
      const started = performance.now();
      code = await new Promise<number>((resolve) => {
        const p = spawn('ip', ['netns', 'exec', lab.client, process.execPath, BIN, 'run', SERVER_NAME, '--', 'sh', '-c', demoScript()], {
          stdio: 'inherit',
          env: lab.env,
        });
        p.on('exit', (c) => resolve(c ?? 128));
      });
      const ms = performance.now() - started;
      // The command exits with the number of its first failed check (see demo/checks.ts).
      const failed = DEMO_CHECKS[code - 1];
      if (code === 0)
        say(
          `every check passed (${DEMO_CHECKS.length} of ${DEMO_CHECKS.length}); the run took ${ms.toFixed(0)} ms (registration and handshake included)`,
        );
      else if (failed) say(`check failed: ${failed.name}`);
      else say(`wirecage exited with ${code} before the checks ended`);
      if (code !== 0 && lab.serverOutput()) process.stderr.write(`wirecagesrv said:\n${lab.serverOutput()}\n`);
      code = code === 0 ? 0 : 1;
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
