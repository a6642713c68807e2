// Port forwards end to end: `wirecagesrv up` in the server namespace, a cage
// (`wirecage run lab --publish ...`) in the client namespace running TCP and
// UDP services, and a remote client in the "internet" namespace that reaches
// them through the server's public ports (tests/lib/srv-lab.ts; its LAN is
// not used here). The server is started without --allow-dest: forwards must
// work whatever the egress policy refuses. The services must see the remote
// client's own address and port; the forwards must go away with the run.
// Nothing leaves the lab's namespaces.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { Lab, nsRun } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { INET4 as INET, SRV_INET4 as PUBLIC, addServer, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const SERVICE = fileURLToPath(new URL('./fixtures/forwards-service.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fixtures/forwards-client.mjs', import.meta.url));
const ADMIN = 'lab-admin-forwards-0123456789';

describe('wirecagesrv port forwards', function () {
  this.timeout(120_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let adminHeader: string;

  const remote = async (...args: string[]): Promise<string> =>
    (await nsRun(l.inet, process.execPath, [CLIENT, ...args], { timeoutMs: 10_000 })).stdout;
  const forwardsOnServer = async (): Promise<{ protocol: string; public_port: number; target_port: number; client_address: string }[]> => {
    const r = await l.cli.runOrThrow('curl', [
      '-sS',
      '--max-time',
      '5',
      '-H',
      `@${adminHeader}`,
      `http://${l.srvAddr}:8443/v1/portforward`,
    ]);
    return (JSON.parse(r.stdout) as { forwards: [] }).forwards;
  };

  /** `wirecage run NAME ... -- node forwards-service.mjs`, once the services listen. */
  async function startCage(name: string, publish: string[]): Promise<LabProcess> {
    const cage = l.cli.spawn(
      process.execPath,
      [WIRECAGE_BIN, 'run', name, ...publish.flatMap((p) => ['--publish', p]), '--', process.execPath, SERVICE, '8080', '5353'],
      { env: l.env },
    );
    await waitFor(() => (cage.assertRunning(), cage.output().includes('ready')), {
      what: 'the services in the cage',
      timeoutMs: 30_000,
      describe: () => `${cage.describe()}\n${server.describe()}`,
    });
    return cage;
  }

  before(async () => {
    l = await srvLab(lab, { built: ['apps/wirecagesrv/dist/forwards/manager.js', 'packages/cli/dist/servers/publish.js'] });
    const adminFile = await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    adminHeader = await writeSecretFile(l.dir, 'admin-header', `Authorization: Bearer ${ADMIN}\n`);
    server = await startWirecagesrv(l, { args: ['--admin-token-file', adminFile], allowInternet: false });
    await addServer(l, 'lab');
    await addServer(l, 'other');
  });

  let cage: LabProcess;

  it('--publish creates the forwards for the run', async () => {
    cage = await startCage('lab', ['28080:8080', '28053:5353/udp']);
    const fw = (await forwardsOnServer()).map((f) => `${f.protocol} ${f.public_port}:${f.target_port} ${f.client_address}`);
    assert.deepEqual(fw, ['tcp 28080:8080 10.200.100.2', 'udp 28053:5353 10.200.100.2']);
  });

  it("a remote client reaches the TCP service in the cage, which sees the client's real address and port", async () => {
    const out = await remote('tcp', PUBLIC, '28080', 'hello through the forward');
    const [me, reply] = out.split('|') as [string, string];
    const [addr, port] = me.split(' ');
    assert.equal(addr, INET, out);
    assert.equal(reply, `tcp ${INET} ${port}\nhello through the forward`, `${out}\n${server.describe()}`);
  });

  it('a remote client reaches the UDP service, and the reply comes back; the service sees the real sender', async () => {
    const out = await remote('udp', PUBLIC, '28053', 'ping');
    const [port, reply] = out.split('|') as [string, string];
    assert.equal(reply, `udp ${INET} ${port} ping`, `${out}\n${server.describe()}`);
  });

  it("another peer cannot take a published port: its run ends with 125 and the server's reason", async () => {
    const r = await nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', 'other', '--publish', '28080:9999', '--', 'true'], {
      env: l.env,
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 125, r.stderr);
    assert.equal(
      r.stderr,
      `wirecage: http://${l.srvAddr}:8443/v1/portforward refused the forward tcp 28080:9999: HTTP 409: tcp port 28080 is already forwarded to another peer\n`,
    );
  });

  it('the forwards go away when the run ends', async () => {
    const exit = await cage.stop(10_000);
    assert.equal(exit.code, 143, cage.describe());
    assert.deepEqual(await forwardsOnServer(), []);
    assert.equal(await remote('tcp', PUBLIC, '28080', 'x'), 'error ECONNREFUSED');
  });

  it('--publish needs a named server', async () => {
    const r = await nsRun(
      l.cli,
      process.execPath,
      [WIRECAGE_BIN, 'run', '-c', join(l.dir, 'none.conf'), '--publish', '8080:80', '--', 'true'],
      { env: l.env, timeoutMs: 30_000 },
    );
    assert.equal(r.code, 125);
    assert.match(r.stderr, /--publish needs a server added with `wirecage add-server`/);
  });
});
