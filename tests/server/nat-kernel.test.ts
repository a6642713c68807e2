// wirecagesrv --nat kernel end to end, in the same lab as nat.test.ts: a cage
// (`wirecage add-server` + `wirecage run NAME`) in the client namespace,
// `wirecagesrv up --nat kernel` started with `ip netns exec` in the server
// namespace (so "the host" whose forwarding and nftables the kernel NAT
// changes is the lab's server namespace, never the machine's), an "internet"
// namespace with HTTP and UDP echo on IPv4 and IPv6, and a LAN the egress
// policy must refuse (tests/lib/srv-lab.ts). Also: port forwards into the
// cage, the per-peer flow limit, the host's state put back after SIGTERM, a
// crashed run's table cleared by the next start, and the refusal without
// privileges. Nothing leaves the lab's namespaces.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WIRECAGE_BIN, startFixture } from '../lib/cage.js';
import { Lab, nsRun } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import {
  INET4,
  INET6,
  SRV_APP,
  SRV_BIN,
  SRV_INET4,
  SRV_INET6,
  LAN_HOST,
  SRV_TOKEN,
  addServer,
  runCaged,
  srvLab,
  startWirecagesrv,
  type SrvLab,
} from '../lib/srv-lab.js';
import { NAT_PROBE, closedPortOutcome, halfCloseAnswers, natProbes, startInternet } from '../lib/srv-internet.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const PROBE = NAT_PROBE;
const SERVICE = fileURLToPath(new URL('./fixtures/forwards-service.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fixtures/forwards-client.mjs', import.meta.url));
const TICKS = fileURLToPath(new URL('./fixtures/tick-server.mjs', import.meta.url));
const ADMIN = 'lab-admin-kernel-0123456789';
const BIG = 50 * 1024 * 1024;
const TABLE = 'wirecagesrv_nat';
/** Opens three TCP connections to the half-close service one after another, holding them: "open open ECONNREFUSED". */
const THREE =
  `const net=require('net');const out=[];const go=(i)=>{if(i===3)return setTimeout(()=>{console.log(out.join(' '));process.exit(0)},500);` +
  `const s=net.connect(8082,'${INET4}');s.on('connect',()=>{out[i]='open';go(i+1)});s.on('error',(e)=>{out[i]=e.code;go(i+1)})};go(0)`;

describe('wirecagesrv kernel NAT', function () {
  this.timeout(180_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let bigSha256: string;
  let server: LabProcess;

  const caged = (cmd: string[], timeoutMs = 60_000) => runCaged(l, cmd, { timeoutMs });
  const probes = (...runs: string[][]) => natProbes(l, server, ...runs);
  const sysctls = async () =>
    (await l.srv.runOrThrow('sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'])).stdout.trim().split('\n');
  const table = async () => l.srv.run('nft', ['list', 'table', 'inet', TABLE]);
  const forwardRules = async () => (await l.srv.runOrThrow('ip', ['rule', 'show'])).stdout.split('\n').filter((x) => x.includes('0x7763'));
  // Every `wirecage run` registers; this suite runs more of them than the default burst of 10.
  let adminHeader: string;
  const startServer = (extra: string[] = []) =>
    startWirecagesrv(l, [
      '--nat',
      'kernel',
      '--dns-upstream',
      `${INET4}:5399`,
      '--register-rate',
      '100',
      '--admin-token-file',
      join(l.dir, 'admin'),
      ...extra,
    ]);

  before(async () => {
    if (!existsSync(join(SRV_APP, 'dist', 'nat', 'kernel.js')))
      throw new Error('apps/wirecagesrv/dist/nat/kernel.js is missing: build first (npx turbo run build)');
    l = await srvLab(lab);
    // The server's "internet" is its default route, so a refused address such as 169.254.169.254 is
    // refused by the policy and not merely unroutable.
    await l.srv.addRoute('0.0.0.0/0', { via: INET4 });
    ({ bigSha256 } = await startInternet(l.inet, '::', BIG));
    await startInternet(l.lan, LAN_HOST);
    assert.deepEqual(await sysctls(), ['0', '0'], 'a fresh namespace does not forward');
    await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    // curl reads the header from a file, so the token stays out of argv.
    adminHeader = await writeSecretFile(l.dir, 'admin-header', `Authorization: Bearer ${ADMIN}\n`);
    server = await startServer();
    await addServer(l, 'lab');
  });

  it('runs in the namespace it was started in: TUN, forwarding and its own nftables table there', async () => {
    assert.match(server.output(), /NAT kernel/);
    assert.deepEqual(await sysctls(), ['1', '1']);
    const t = await table();
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /masquerade/);
    assert.match((await l.srv.ip(['-o', 'addr', 'show', 'dev', 'wcs0'])).stdout, /10\.200\.100\.1\/24[\s\S]*fd7a:5e:60::1\/64/);
    assert.equal((await forwardRules()).length, 1);
  });

  it("fetches over HTTP through the NAT, from the server's address; the gateway and the internet host answer ping", async () => {
    const r = await caged([
      'sh',
      '-c',
      `curl -sS --max-time 10 http://${INET4}:8080/hello && ping -n -c 1 -W 3 10.200.100.1 >/dev/null && ping -n -c 1 -W 3 ${INET4} >/dev/null && echo pong`,
    ]);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout, `hello ${SRV_INET4}\npong\n`);
  });

  it('carries a 50 MB download intact (SHA-256)', async () => {
    const r = await caged(['sh', '-c', `curl -sS --max-time 100 http://${INET4}:8080/big | sha256sum`], 120_000);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout.split(/\s/)[0], bigSha256);
  });

  it("carries IPv6 to an IPv6 host, masqueraded behind the server's IPv6 address", async () => {
    const r = await caged(['curl', '-sS', '-g', '--max-time', '10', `http://[${INET6}]:8080/hello`]);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout, `hello ${SRV_INET6}\n`);
  });

  it('echoes UDP, the reply coming from the original destination (IPv4 and IPv6)', async () => {
    assert.deepEqual(await probes(['udp', INET4, '7', 'ping4'], ['udp', INET6, '7', 'ping6']), [
      `reply ${INET4} 7 echo ${SRV_INET4} ping4`,
      `reply ${INET6} 7 echo ${SRV_INET6} ping6`,
    ]);
  });

  it('carries half-close both ways', async () => {
    assert.deepEqual(await halfCloseAnswers(l, server), ['answer got 300000', 'answer got 1000']);
  });

  it("a closed port answers the client's SYN with a reset (the kernel forwards the destination's own RST)", async () => {
    const r = await closedPortOutcome(l);
    assert.deepEqual(r.lines, ['connect-error ECONNREFUSED', 'connect-error ECONNREFUSED', 'curl 7'], `${r.stderr}\n${server.describe()}`);
  });

  it("refuses the server's own LAN and the cloud metadata address: TCP reset, UDP dropped", async () => {
    assert.deepEqual(await probes(['tcp', LAN_HOST, '8080'], ['udp', LAN_HOST, '7', 'x'], ['tcp', '169.254.169.254', '80']), [
      'connect-error ECONNREFUSED',
      'timeout',
      'connect-error ECONNREFUSED',
    ]);
  });

  it("relays port forwards into the cage; the services see the remote client's real address", async () => {
    const cage = l.cli.spawn(
      process.execPath,
      [
        WIRECAGE_BIN,
        'run',
        'lab',
        '--publish',
        '28080:8080',
        '--publish',
        '28053:5353/udp',
        '--',
        process.execPath,
        SERVICE,
        '8080',
        '5353',
      ],
      { env: l.env },
    );
    try {
      await waitFor(() => (cage.assertRunning(), cage.output().includes('ready')), {
        what: 'the services in the cage',
        timeoutMs: 30_000,
        describe: () => `${cage.describe()}\n${server.describe()}`,
      });
      const tcp = (
        await nsRun(l.inet, process.execPath, [CLIENT, 'tcp', SRV_INET4, '28080', 'hello through the forward'], { timeoutMs: 10_000 })
      ).stdout;
      const [me, reply] = tcp.split('|') as [string, string];
      assert.equal(reply, `tcp ${INET4} ${me.split(' ')[1]}\nhello through the forward`, `${tcp}\n${server.describe()}`);
      const udp = (await nsRun(l.inet, process.execPath, [CLIENT, 'udp', SRV_INET4, '28053', 'ping'], { timeoutMs: 10_000 })).stdout;
      const [port, answer] = udp.split('|') as [string, string];
      assert.equal(answer, `udp ${INET4} ${port} ping`, `${udp}\n${server.describe()}`);
    } finally {
      await cage.stop(10_000);
    }
  });

  it("a removed peer's flows are cut: its conntrack entries go, and the lab host's next segment is answered with a reset", async () => {
    const ticks = await startFixture(l.inet, TICKS, [INET4, '7100']);
    const cage = l.cli.spawn(
      process.execPath,
      [
        WIRECAGE_BIN,
        'run',
        'lab',
        '--',
        process.execPath,
        '-e',
        `require('net').connect(7100, '${INET4}').on('data', () => {}).on('error', () => {}); setTimeout(() => {}, 60000)`,
      ],
      { env: l.env },
    );
    const admin = (method: string, path: string, body?: string) =>
      l.cli.runOrThrow('curl', [
        '-sS',
        '--max-time',
        '5',
        '-X',
        method,
        '-H',
        `@${adminHeader}`,
        '-H',
        'Content-Type: application/json',
        ...(body ? ['--data-binary', body] : []),
        `http://${l.srvAddr}:8443${path}`,
      ]);
    try {
      await waitFor(() => (cage.assertRunning(), ticks.output().includes('connected ')), {
        what: 'the connection through the NAT',
        timeoutMs: 30_000,
        describe: () => `${cage.describe()}\n${ticks.describe()}`,
      });
      const [peer] = (
        JSON.parse((await admin('GET', '/v1/peers')).stdout) as { peers: { client_public_key: string; client_address: string }[] }
      ).peers;
      const tracked = async () =>
        (await l.srv.run('conntrack', ['-L', '--orig-src', peer!.client_address])).stdout
          .split('\n')
          .filter((x) => x.includes('dport=7100')).length;
      assert.equal(await tracked(), 1, 'the kernel tracks the connection');
      const removed = JSON.parse(
        (await admin('DELETE', '/v1/register', JSON.stringify({ client_public_key: peer!.client_public_key }))).stdout,
      ) as { removed: string };
      assert.equal(removed.removed, peer!.client_public_key);
      assert.equal(await tracked(), 0, 'its conntrack entry is gone');
      await waitFor(() => /^ended \S+ reset$/m.test(ticks.output()), {
        what: 'the lab host to see the connection reset',
        timeoutMs: 5_000,
        describe: () => `${ticks.describe()}\n${server.describe()}`,
      });
      // Earlier runs of this suite's cage left entries of their own (closing, UDP): they go too.
      assert.match(server.output(), /cut [1-9]\d* NAT flow\(s\) of the removed peer/);
    } finally {
      await cage.stop(10_000);
      await ticks.stop();
      // The removed peer's stored registration is void: wirecage drops it after the next run's failed
      // handshake (tests/cage/server-lease.test.ts); the runs below register afresh at once instead.
      rmSync(join(l.env.XDG_CONFIG_HOME!, 'wirecage', 'keys', 'lab.lease.json'), { force: true });
    }
  });

  it('after SIGTERM: the table, the forward routing and the TUN are gone, forwarding is as it was', async () => {
    const exit = await server.stop(10_000);
    assert.equal(exit.code, 0, server.describe());
    assert.notEqual((await table()).code, 0, 'the nftables table is removed');
    assert.deepEqual(await forwardRules(), []);
    assert.equal((await l.srv.run('ip', ['link', 'show', 'wcs0'])).code, 1);
    assert.deepEqual(await sysctls(), ['0', '0']);
    assert.match(
      server.output(),
      /NAT: relayed [1-9]\d* TCP and [1-9]\d* UDP flow\(s\); refused by the egress policy [1-9]\d* TCP, [1-9]\d* UDP/,
    );
  });

  it('a start after a crash removes the table left behind and restores forwarding; --allow-lan opens the LAN; flow limits hold', async () => {
    server = await startServer(['--allow-lan']);
    // A crash: stage 1 and stage 2 (one process group) killed outright, nothing cleaned up.
    process.kill(-server.pid!, 'SIGKILL');
    await server.exited;
    await waitFor(async () => (await l.srv.run('ip', ['link', 'show', 'wcs0'])).code !== 0, {
      what: "the killed server's TUN to go",
      timeoutMs: 5_000,
    });
    assert.equal((await table()).code, 0, 'the crashed run left its table');
    assert.deepEqual(await sysctls(), ['1', '1']);

    server = await startServer(['--allow-lan', '--max-flows-per-peer', '2']);
    assert.match(
      server.output(),
      /removed the nftables table inet wirecagesrv_nat left by a run that did not stop cleanly, and set forwarding back to what it was before that run \(IPv4 0, IPv6 0\)/,
    );
    assert.equal((await forwardRules()).length, 1);
    const r = await caged(['sh', '-c', `${process.execPath} ${PROBE} tcp ${LAN_HOST} 8080; ${process.execPath} -e "${THREE}"`]);
    assert.deepEqual(r.stdout.trim().split('\n'), ['data HTTP/1.1 200 OK', 'open open ECONNREFUSED'], `${r.stderr}\n${server.describe()}`);
    assert.equal((await server.stop(10_000)).code, 0, server.describe());
    assert.deepEqual(await sysctls(), ['0', '0']);
    assert.notEqual((await table()).code, 0);
  });

  it('refuses to start without the privileges it needs, naming them', async () => {
    const home = await lab.tempDir();
    const token = await writeSecretFile(home, 'token', `${SRV_TOKEN}\n`);
    await chown(home, 65534, 65534);
    await chown(token, 65534, 65534);
    const r = await l.srv.run(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        SRV_BIN,
        'up',
        '--nat',
        'kernel',
        '--auth-token-file',
        token,
        '--wg-listen',
        `${l.srvAddr}:51822`,
        '--api-listen',
        `${l.srvAddr}:8445`,
        '--state',
        join(home, 'registry.db'),
      ],
      { env: { PATH: process.env.PATH, HOME: home }, timeoutMs: 30_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^wirecagesrv: --nat kernel .* needs CAP_NET_ADMIN .* run it as root, or use --nat userspace/m);
    assert.notEqual((await table()).code, 0);
  });
});
