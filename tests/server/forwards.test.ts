// Port forwards end to end: `wirecagesrv up` in the server namespace, a cage
// (`wirecage run lab --publish ...`) in the client namespace running TCP and
// UDP services, and a remote client in an "internet" namespace that reaches
// them through the server's public ports. The services must see the remote
// client's own address and port; the forwards must go away with the run.
// Nothing leaves the lab's namespaces.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../lib/exec.js';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { Lab, nsRun, type Netns } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const SRV_APP = fileURLToPath(new URL('../../apps/wirecagesrv/', import.meta.url));
const SRV_BIN = join(SRV_APP, 'bin', 'run.js');
const SERVICE = fileURLToPath(new URL('./fixtures/forwards-service.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fixtures/forwards-client.mjs', import.meta.url));
const TOKEN = 'lab-token-forwards-0123456789';
const ADMIN = 'lab-admin-forwards-0123456789';
const PUBLIC = '10.98.1.1';
const INET = '10.98.1.2';

describe('wirecagesrv port forwards', function () {
  this.timeout(120_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let srv: Netns;
  let cli: Netns;
  let inet: Netns;
  let srvAddr: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let server: LabProcess;
  let adminHeader: string;

  const remote = async (...args: string[]): Promise<string> => (await nsRun(inet, process.execPath, [CLIENT, ...args], { timeoutMs: 10_000 })).stdout;
  const forwardsOnServer = async (): Promise<{ protocol: string; public_port: number; target_port: number; client_address: string }[]> => {
    const r = await cli.runOrThrow('curl', ['-sS', '--max-time', '5', '-H', `@${adminHeader}`, `http://${srvAddr}:8443/v1/portforward`]);
    return (JSON.parse(r.stdout) as { forwards: [] }).forwards;
  };

  /** `wirecage run NAME ... -- node forwards-service.mjs`, once the services listen. */
  async function startCage(name: string, publish: string[]): Promise<LabProcess> {
    const cage = cli.spawn(process.execPath, [WIRECAGE_BIN, 'run', name, ...publish.flatMap((p) => ['--publish', p]), '--', process.execPath, SERVICE, '8080', '5353'], { env });
    await waitFor(async () => (cage.assertRunning(), cage.output().includes('ready')), { what: 'the services in the cage', timeoutMs: 30_000, describe: () => `${cage.describe()}\n${server.describe()}` });
    return cage;
  }

  before(async () => {
    for (const f of [join(SRV_APP, 'dist', 'forwards', 'manager.js'), fileURLToPath(new URL('../../packages/cli/dist/servers/publish.js', import.meta.url))]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: build first (npx turbo run build)`);
    }
    srv = await lab.namespace('srv');
    cli = await lab.namespace('cli');
    inet = await lab.namespace('inet');
    srvAddr = (await lab.veth(srv, cli, { v6: false })).a.v4!;
    await lab.veth(srv, inet, { v4: [`${PUBLIC}/24`, `${INET}/24`], v6: false });
    dir = await lab.tempDir();
    env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') };
    const tokenFile = await writeSecretFile(dir, 'token', `${TOKEN}\n`);
    const adminFile = await writeSecretFile(dir, 'admin', `${ADMIN}\n`);
    adminHeader = await writeSecretFile(dir, 'admin-header', `Authorization: Bearer ${ADMIN}\n`);
    server = srv.spawn(
      process.execPath,
      [SRV_BIN, 'up', '--auth-token-file', tokenFile, '--admin-token-file', adminFile, '--wg-listen', '0.0.0.0:51820', '--wg-endpoint', `${srvAddr}:51820`,
        '--api-listen', `${srvAddr}:8443`, '--state', join(dir, 'state', 'registry.db'), '--subnet6', 'fd7a:5e:61::/64'],
      { env: { PATH: process.env.PATH, HOME: dir } },
    );
    await waitFor(
      async () => {
        server.assertRunning();
        const r = await cli.run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `http://${srvAddr}:8443/healthz`]);
        return r.stdout === '200';
      },
      { what: 'wirecagesrv API to answer /healthz', timeoutMs: 15_000, intervalMs: 100, describe: () => server.describe() },
    );
    for (const name of ['lab', 'other']) {
      const add = await run(process.execPath, [WIRECAGE_BIN, 'add-server', name, `http://${srvAddr}:8443`, '--token', TOKEN], { env });
      assert.equal(add.code, 0, add.stderr);
    }
  });

  let cage: LabProcess;

  it('--publish creates the forwards for the run', async () => {
    cage = await startCage('lab', ['18080:8080', '18053:5353/udp']);
    const fw = (await forwardsOnServer()).map((f) => `${f.protocol} ${f.public_port}:${f.target_port} ${f.client_address}`);
    assert.deepEqual(fw, ['tcp 18080:8080 10.200.100.2', 'udp 18053:5353 10.200.100.2']);
  });

  it('a remote client reaches the TCP service in the cage, which sees the client\'s real address and port', async () => {
    const out = await remote('tcp', PUBLIC, '18080', 'hello through the forward');
    const [me, reply] = out.split('|') as [string, string];
    const [addr, port] = me.split(' ');
    assert.equal(addr, INET, out);
    assert.equal(reply, `tcp ${INET} ${port}\nhello through the forward`, `${out}\n${server.describe()}`);
  });

  it('a remote client reaches the UDP service, and the reply comes back; the service sees the real sender', async () => {
    const out = await remote('udp', PUBLIC, '18053', 'ping');
    const [port, reply] = out.split('|') as [string, string];
    assert.equal(reply, `udp ${INET} ${port} ping`, `${out}\n${server.describe()}`);
  });

  it('another peer cannot take a published port: its run ends with 125 and the server\'s reason', async () => {
    const r = await nsRun(cli, process.execPath, [WIRECAGE_BIN, 'run', 'other', '--publish', '18080:9999', '--', 'true'], { env, timeoutMs: 30_000 });
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stderr, `wirecage: http://${srvAddr}:8443/v1/portforward refused the forward tcp 18080:9999: HTTP 409: tcp port 18080 is already forwarded to another peer\n`);
  });

  it('the forwards go away when the run ends', async () => {
    const exit = await cage.stop(10_000);
    assert.equal(exit.code, 143, cage.describe());
    assert.deepEqual(await forwardsOnServer(), []);
    assert.equal(await remote('tcp', PUBLIC, '18080', 'x'), 'error ECONNREFUSED');
  });

  it('--publish needs a named server', async () => {
    const r = await nsRun(cli, process.execPath, [WIRECAGE_BIN, 'run', '-c', join(dir, 'none.conf'), '--publish', '8080:80', '--', 'true'], { env, timeoutMs: 30_000 });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /--publish needs a server added with `wirecage add-server`/);
  });
});
