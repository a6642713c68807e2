// Stopping a real `wirecagesrv up` in the lab drains its API: on SIGTERM it
// says STOPPING=1, accepts no new connection, answers the request it was
// already serving (here one that waits for its body until the test sends it,
// after the signal), and exits 0; a request that does not finish is cut at
// --drain-timeout and the server exits all the same.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOrThrow } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import { NotifyListener } from '../lib/notify-listener.js';
import type { LabProcess } from '../lib/process.js';
import { srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';
import { generateKeyPair } from '../lib/wg.js';

const SLOW = fileURLToPath(new URL('./fixtures/slow-request.mjs', import.meta.url));

describe('wirecagesrv drains its API on SIGTERM', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let notify: NotifyListener | undefined;
  const running: LabProcess[] = [];
  after(async () => {
    notify?.close();
    for (const p of running) await p.stop();
    await lab.teardown();
  });

  before(async () => {
    l = await srvLab(lab);
    notify = new NotifyListener(join(l.dir, 'notify'));
  });

  /** POST /v1/register for a fresh key, in flight (the server has taken it) until a line is written to the returned fifo. */
  async function requestInFlight(name: string): Promise<{ client: LabProcess; fifo: string }> {
    const key = await generateKeyPair(l.dir, name);
    const fifo = join(l.dir, `${name}.fifo`);
    await runOrThrow('mkfifo', [fifo]);
    const body = JSON.stringify({ client_public_key: key.publicKey });
    const client = l.cli.spawn(process.execPath, [SLOW, l.srvAddr, '8443', '/v1/register', fifo, l.tokenFile, body]);
    running.push(client);
    await waitFor(() => (client.assertRunning(), client.output().includes('continue\n')), {
      what: 'the server to take the request (100 Continue)',
      describe: () => client.describe(),
    });
    return { client, fifo };
  }

  const outcome = (client: LabProcess) =>
    waitFor(() => /^(answer .*|closed without an answer|error .*)$/m.exec(client.output())?.[1], {
      what: 'the slow request to end',
      timeoutMs: 30_000,
      describe: () => client.describe(),
    });

  const exited = (server: LabProcess) =>
    waitFor(() => server.exitStatus, { what: 'wirecagesrv to exit', timeoutMs: 30_000, describe: () => server.describe() });

  it('answers a request in flight when SIGTERM arrives, refusing new connections meanwhile, then exits 0', async () => {
    const server = await startWirecagesrv(l, { args: ['--drain-timeout', '60'], env: { NOTIFY_SOCKET: notify!.path } });
    running.push(server);
    await notify!.ready(server);
    const { client, fifo } = await requestInFlight('drained');
    process.kill(server.pid!, 'SIGTERM');
    await notify!.next(server, 'STOPPING=1');
    // Not accepting: a new connection is refused (curl's exit status 7) while the old request waits.
    await waitFor(async () => (await l.cli.run('curl', ['-sS', '--max-time', '2', `http://${l.srvAddr}:8443/healthz`])).code === 7, {
      what: 'the API to refuse new connections',
      timeoutMs: 10_000,
      intervalMs: 100,
      describe: () => server.describe(),
    });
    assert.equal(server.running, true, 'the server exited with a request in flight');
    await writeFile(fifo, 'go\n');
    const answer = JSON.parse((await outcome(client)).replace(/^answer /, '')) as string;
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/, answer);
    // The connection is not kept alive past the drain.
    assert.match(answer, /\r\nconnection: close\r\n/i, answer);
    assert.match(answer, /"client_address":"10\.200\.100\.\d+\/24"/, answer);
    const exit = await exited(server);
    assert.equal(exit.code, 0, server.describe());
  });

  it('cuts a request that does not finish at --drain-timeout, and exits 0', async () => {
    const server = await startWirecagesrv(l, { args: ['--drain-timeout', '1'] });
    running.push(server);
    const { client } = await requestInFlight('stalled');
    const from = Date.now();
    process.kill(server.pid!, 'SIGTERM');
    const exit = await exited(server);
    const took = Date.now() - from;
    assert.equal(exit.code, 0, server.describe());
    assert.ok(took >= 1000, `exited ${took} ms after SIGTERM: it did not wait the second of --drain-timeout for the request`);
    assert.equal(await outcome(client), 'closed without an answer');
  });
});
