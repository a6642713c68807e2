// `--publish 0:TARGET` with a real wirecagesrv (tests/lib/srv-lab.ts; its
// internet and LAN are not used): the server picks a free port of its
// --forward-ports (two ports here, so a full range is quick to reach), the
// command and --on-publish learn it in WIRECAGE_PUBLISHED with the server's
// public address in WIRECAGE_PUBLIC_ADDR, a lab host reaches the caged
// service there, two runs at once get different ports, a run that finds the
// range full ends with 125 and the server's reason, and a failing
// --on-publish is a warning while the command goes on.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { Lab, nsRun } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { addServer, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';

const SERVICE = fileURLToPath(new URL('../server/fixtures/forwards-service.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('../server/fixtures/forwards-client.mjs', import.meta.url));
const LOW = 28100;
const HIGH = 28101;

describe('wirecage run NAME --publish 0:TARGET', function () {
  this.timeout(180_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess;
  const cages: LabProcess[] = [];
  after(async () => {
    for (const c of cages) await c.stop();
    await lab.teardown();
  });

  /** A run whose command prints what it learnt ("env PUBLISHED ADDR"), then serves TCP 8080 and UDP 5353. */
  function startCage(name: string, publish: string[], extra: string[] = []): LabProcess {
    const cmd = `echo "env $WIRECAGE_PUBLISHED $WIRECAGE_PUBLIC_ADDR"; exec ${process.execPath} ${SERVICE} 8080 5353`;
    const cage = l.cli.spawn(
      process.execPath,
      [WIRECAGE_BIN, 'run', name, ...publish.flatMap((p) => ['--publish', p]), ...extra, '--', 'sh', '-c', cmd],
      { env: l.env },
    );
    cages.push(cage);
    return cage;
  }

  /** The command's "env" line, once it serves. */
  async function learnt(cage: LabProcess): Promise<{ published: string; addr: string }> {
    const m = await waitFor(
      () => {
        cage.assertRunning();
        return cage.output().includes('ready') && /^env (\S*) (\S*)$/m.exec(cage.output());
      },
      { what: 'the caged service and its env line', timeoutMs: 30_000, describe: () => `${cage.describe()}\n${server.describe()}` },
    );
    return { published: m[1]!, addr: m[2]! };
  }

  const inRange = (port: number) => port >= LOW && port <= HIGH;

  before(async () => {
    l = await srvLab(lab, { built: ['apps/wirecagesrv/dist/forwards/manager.js', 'packages/cli/dist/servers/on-publish.js'] });
    server = await startWirecagesrv(l, { args: ['--forward-ports', `${LOW}-${HIGH}`], allowInternet: false });
    for (const name of ['lab', 'other', 'third']) await addServer(l, name);
  });

  it('gives the command and --on-publish the chosen ports and the public address; a lab host reaches the service there', async () => {
    // As a torrent client's API would be: the hook reaches the command's service on the cage's own
    // loopback (nothing listens there outside the cage), trying until it answers, at most 100 times.
    const api = `r=$(${process.execPath} ${CLIENT} tcp 127.0.0.1 8080 api); case "$r" in error*|timeout) continue;; esac; echo "hook reached $r" >&2; exit 0`;
    const hook = `echo "hook $WIRECAGE_PUBLISHED $WIRECAGE_PUBLIC_ADDR" >&2; for i in $(seq 100); do ${api}; done; exit 1`;
    const cage = startCage('lab', ['0:8080', '0:5353/udp'], ['--on-publish', hook]);
    const { published, addr } = await learnt(cage);
    const m = /^tcp:(\d+):8080,udp:(\d+):5353$/.exec(published);
    assert.ok(m, `WIRECAGE_PUBLISHED=${published}`);
    const [tcp, udp] = [Number(m[1]), Number(m[2])];
    assert.ok(inRange(tcp) && inRange(udp), `${published} outside ${LOW}-${HIGH}`);
    // The server's --wg-endpoint host: where this lab's clients reach it.
    assert.equal(addr, l.srvAddr);
    await waitFor(() => cage.output().includes(`hook ${published} ${addr}\n`), {
      what: '--on-publish to print its env',
      timeoutMs: 10_000,
      describe: () => cage.describe(),
    });
    await waitFor(() => /^hook reached 127\.0\.0\.1 \d+\|tcp 127\.0\.0\.1 \d+\napi$/m.test(cage.output()), {
      what: "--on-publish to reach the service on the cage's loopback",
      timeoutMs: 30_000,
      describe: () => cage.describe(),
    });
    assert.doesNotMatch(cage.output(), /warning: --on-publish/);

    const reach = async (...args: string[]) => (await nsRun(l.cli, process.execPath, [CLIENT, ...args], { timeoutMs: 10_000 })).stdout;
    const out = await reach('tcp', addr, String(tcp), 'hello');
    const [me, reply] = out.split('|') as [string, string];
    const [from, port] = me.split(' ');
    assert.equal(reply, `tcp ${from} ${port}\nhello`, `${out}\n${server.describe()}`);
    const dgram = await reach('udp', addr, String(udp), 'ping');
    assert.match(dgram, /^\d+\|udp \S+ \d+ ping$/, `${dgram}\n${server.describe()}`);

    assert.equal((await cage.stop(10_000)).code, 143, cage.describe());
    assert.equal(await reach('tcp', addr, String(tcp), 'x'), 'error ECONNREFUSED', 'the forward went with the run');
  });

  it("two runs at once get different ports; a third finds the range full and ends with 125 and the server's reason", async () => {
    const [a, b] = [startCage('lab', ['0:8080']), startCage('other', ['0:8080'])];
    const got = await Promise.all([learnt(a), learnt(b)]);
    const ports = got.map((g) => Number(/^tcp:(\d+):8080$/.exec(g.published)?.[1]));
    assert.ok(ports.every(inRange), `ports ${ports.join(', ')}`);
    assert.notEqual(ports[0], ports[1], 'two runs were given the same port');

    const r = await nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', 'third', '--publish', '0:9000', '--', 'true'], {
      env: l.env,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 125, r.stderr);
    assert.equal(
      r.stderr,
      `wirecage: http://${l.srvAddr}:8443/v1/portforward refused the forward tcp 0:9000: HTTP 503: no tcp port is free among the ports this server forwards (${LOW}-${HIGH}): every one is taken; remove a forward or ask for a wider --forward-ports\n`,
    );
    for (const c of [a, b]) assert.equal((await c.stop(10_000)).code, 143, c.describe());
  });

  it("a failing --on-publish is a warning: the command goes on and its status is the run's", async () => {
    const cage = startCage('third', ['0:8080'], ['--on-publish', 'echo trying >&2; exit 3']);
    await learnt(cage);
    await waitFor(
      () => /wirecage: warning: --on-publish: "echo trying >&2; exit 3" exited with 3; the command goes on\n/.test(cage.output()),
      {
        what: 'the warning about --on-publish',
        timeoutMs: 10_000,
        describe: () => cage.describe(),
      },
    );
    cage.assertRunning();
    assert.equal((await cage.stop(10_000)).code, 143, cage.describe());
  });

  it('--on-publish without --publish is refused before anything runs', async () => {
    const r = await nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--on-publish', 'true', '--', 'true'], {
      env: l.env,
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stderr, 'wirecage: --on-publish needs --publish: it runs once the published ports are known\n');
  });
});
