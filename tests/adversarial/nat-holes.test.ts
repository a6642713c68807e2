// The NAT's holes (issue 10), each as a probe that must not get through,
// against a real `wirecagesrv up` in the lab of tests/lib/srv-lab.ts, in both
// NAT modes where it applies:
// - destinations the egress policy refuses although they look public: NAT64
//   (64:ff9b::/96 with the metadata address inside), 6to4 (2002::/16 with it
//   inside), Teredo (2001::/32), 198.18.0.0/15, 192.0.0.0/24, and an address
//   the server's host gains while it runs (its own, reached from itself);
// - kernel mode: a port of the host other than 53 on the gateway address;
// - a raw-protocol packet (IP protocol 253) from one peer to another, with
//   forwarding on in the server's host namespace;
// - a forward's public port outside --forward-ports (the default 20000-29999);
// - flows the policy refuses, from one peer while another peer downloads: the
//   download arrives whole (it did not when both cages shared one peer, see
//   the test).
// Every listener records what reaches it and must have seen nothing; each
// probe is then run again with its hole opened (--allow-dest, or a rule the
// test inserts itself) and must be seen, so none passes for lack of a path.
// The "public" destinations exist only on the lab's internet namespace,
// reached by the server's default routes; nothing leaves the lab.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixture } from '../lib/cage.js';
import { run } from '../lib/exec.js';
import { Lab, nsRun } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import {
  GATEWAY4,
  INET4,
  INET6,
  LAN_HOST,
  SRV_INET4,
  SRV_TOKEN,
  addServer,
  runCaged,
  srvLab,
  startWirecagesrv,
  type SrvLab,
} from '../lib/srv-lab.js';
import { NAT_PROBE, startInternet } from '../lib/srv-internet.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';
import { startWireguardGo, type WireguardGoPeer } from '../lib/wireguard-go.js';

const PROBE = NAT_PROBE;
const LISTENER = fileURLToPath(new URL('./fixtures/listener.mjs', import.meta.url));
const HTTP_PORT = 8080;
// 48 MiB at 3 MiB/s: about 16 s whatever the machine, several times the other peer's cage and probes.
const BIG = 48 * 1024 * 1024;
const RATE = '3M';
const RAW = fileURLToPath(new URL('./fixtures/raw-proto.py', import.meta.url));
const ADMIN = 'lab-admin-holes-0123456789';
const PORT = 7070;
/** Where the lab's internet answers for addresses a peer must not reach through the server. */
const TRANSLATED: [what: string, address: string][] = [
  ['NAT64 of 169.254.169.254', '64:ff9b::a9fe:a9fe'],
  ['6to4 of 169.254.169.254', '2002:a9fe:a9fe::1'],
  ['Teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
  ['198.18.0.0/15', '198.19.255.1'],
  ['192.0.0.0/24', '192.0.0.170'],
];
/** Addresses the server's host gains while it runs, one per mode (TEST-NET-2, on the lab server's lo). */
const OWN = { userspace: '198.51.100.7', kernel: '198.51.100.8' } as const;
const GATEWAY_PORT = 2222;
const SQUAT_PORT = 8022;
type Mode = keyof typeof OWN;

const host = (a: string) => (a.includes(':') ? `${a}/128` : `${a}/32`);

describe('adversarial: the NAT holes stay closed', function () {
  this.timeout(150_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess | undefined;
  let internet: LabProcess;
  let gatewayListener: LabProcess;
  let bigSha256: string;
  let other: SrvLab | undefined;
  let added = false;
  /** `wirecage add-server lab`, once (it asks the running server). */
  const labServerAdded = async () => {
    if (!added) await addServer(l, 'lab');
    added = true;
  };
  const own: Partial<Record<Mode, LabProcess>> = {};
  let adminHeader: string;
  let authHeader: string;
  const peers: { go: WireguardGoPeer; address: string }[] = [];

  const start = async (mode: Mode, extra: string[] = []): Promise<LabProcess> => {
    await server?.stop(10_000);
    server = await startWirecagesrv(l, ['--nat', mode, '--register-rate', '100', '--admin-token-file', join(l.dir, 'admin'), ...extra]);
    return server;
  };
  const describeAll = () => `${server?.describe()}\n${internet.describe()}`;
  /** nat-probe.mjs `tcp ADDRESS PORT` for each address, all in one cage: one output line each. */
  const probe = async (addresses: string[], port = PORT): Promise<string[]> => {
    const script = addresses.map((a) => `${process.execPath} ${PROBE} tcp ${a} ${port}`).join('; ');
    const r = await runCaged(l, ['sh', '-c', script]);
    assert.equal(r.code, 0, `${r.stderr}\n${describeAll()}`);
    return r.stdout.trim().split('\n');
  };
  const conns = (p: LabProcess) =>
    p
      .output()
      .split('\n')
      .filter((x) => x.startsWith('conn '));
  const refusedEach = (lines: string[], addresses: string[]) =>
    lines.forEach((line, i) =>
      assert.match(line, /^(reset|connect-error \w+|timeout|eof)$/, `${addresses[i]} got through: ${line}\n${describeAll()}`),
    );
  const admin = (method: string, body: object) =>
    l.cli.runOrThrow('curl', [
      '-sS',
      '--max-time',
      '5',
      '-w',
      '\n%{http_code}',
      '-X',
      method,
      '-H',
      `@${adminHeader}`,
      '-H',
      'Content-Type: application/json',
      '--data-binary',
      JSON.stringify(body),
      `http://${l.srvAddr}:8443/v1/portforward`,
    ]);

  /** The host gains an address while the server runs (the watcher must notice), with a listener on it. */
  async function gainAddress(mode: Mode): Promise<string> {
    const a = OWN[mode];
    await l.srv.ip(['addr', 'add', `${a}/32`, 'dev', 'lo']);
    own[mode] = await startFixture(l.srv, LISTENER, [String(PORT), a]);
    return a;
  }

  before(async () => {
    l = await srvLab(lab);
    await l.srv.addRoute('0.0.0.0/0', { via: INET4 });
    await l.srv.addRoute('::/0', { via: INET6 });
    for (const [, a] of TRANSLATED) await l.inet.ip(['addr', 'add', host(a), 'dev', 'lo']);
    internet = await startFixture(l.inet, LISTENER, [String(PORT), ...TRANSLATED.map(([, a]) => a)]);
    ({ bigSha256 } = await startInternet(l.inet, INET4, BIG, HTTP_PORT));
    // A host service on every address, as sshd would be: the kernel NAT's gateway address among them.
    gatewayListener = await startFixture(l.srv, LISTENER, [String(GATEWAY_PORT), '0.0.0.0']);
    await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    adminHeader = await writeSecretFile(l.dir, 'admin-header', `Authorization: Bearer ${ADMIN}\n`);
    authHeader = await writeSecretFile(l.dir, 'auth-header', `Authorization: Bearer ${SRV_TOKEN}\n`);
    // Forwarding on in the server's host namespace, as on any Docker host.
    await l.srv.sysctl('net.ipv4.ip_forward', 1);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') await server?.stop(10_000);
  });

  for (const mode of ['userspace', 'kernel'] as const) {
    describe(`--nat ${mode}`, () => {
      it('refuses NAT64, 6to4, Teredo, 198.18/15, 192.0.0/24 and an address the host gains meanwhile; each is reached once --allow-dest names it', async () => {
        await start(mode);
        await labServerAdded();
        const mine = await gainAddress(mode);
        const targets = [...TRANSLATED.map(([, a]) => a), mine];
        const before = conns(internet).length;
        refusedEach(await probe(targets), targets);
        assert.equal(conns(internet).length, before, `the lab's internet was reached:\n${describeAll()}`);
        assert.deepEqual(conns(own[mode]!), [], "the host's own address was reached");

        await start(
          mode,
          targets.flatMap((a) => ['--allow-dest', host(a)]),
        );
        // The kernel NAT lets peers reach nothing of the host itself but DNS and ping, whatever --allow-dest
        // says: its own address is opened by hand there (the rule its input chain had before).
        if (mode === 'kernel') await acceptInput(mine, PORT);
        assert.deepEqual(
          await probe(targets),
          targets.map(() => 'data hello'),
          describeAll(),
        );
        assert.equal(conns(internet).length, before + TRANSLATED.length);
        assert.equal(conns(own[mode]!).length, 1);
      });

      if (mode === 'kernel') {
        it('a peer reaches no port of the host on the gateway address but DNS: a host service there sees nothing', async () => {
          await start(mode);
          refusedEach(await probe([GATEWAY4], GATEWAY_PORT), [GATEWAY4]);
          assert.deepEqual(conns(gatewayListener), []);
          // The hole opened by hand (the rule the table had before): the same probe is seen.
          await acceptInput(GATEWAY4, GATEWAY_PORT);
          assert.deepEqual(await probe([GATEWAY4], GATEWAY_PORT), ['data hello'], describeAll());
          assert.equal(conns(gatewayListener).length, 1);
        });
      }

      it('a raw IP packet (protocol 253) from one peer to another is not routed, with forwarding on in the host', async () => {
        await start(mode);
        if (peers.length === 0) await addPeers();
        const [a, b] = peers as [(typeof peers)[0], (typeof peers)[0]];
        await handshake(a);
        await handshake(b);
        const listener = b.go.ns.spawn('python3', ['-u', RAW, 'listen']);
        try {
          await waitFor(() => (listener.assertRunning(), listener.output().includes('listening')), {
            what: 'the raw listener',
            describe: () => listener.describe(),
          });
          if (mode === 'userspace') {
            const nat = natNamespace(server!.pid!);
            assert.equal(await nsRunIn(nat, 'cat', ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']), '0\n0\n');
            // A new namespace takes IPv4 forwarding from the machine's initial one, on wherever that forwards (this
            // lab's server namespace cannot pass it on): with it on by hand, the forward chain must hold alone.
            await nsRunIn(nat, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
          }
          await a.go.ns.runOrThrow('python3', [RAW, 'send', b.address, 'closed']);
          // The hole opened by hand (the forward chain accepting); a packet sent after the first one arrives
          // after it, so seeing the second and not the first means the first was dropped.
          await openForwarding(mode);
          await a.go.ns.runOrThrow('python3', [RAW, 'send', b.address, 'open']);
          await waitFor(() => listener.output().includes(`got ${a.address} open`), {
            what: 'the raw packet once forwarding is open',
            timeoutMs: 5_000,
            describe: () => `${listener.describe()}\n${describeAll()}`,
          });
          assert.deepEqual(
            listener
              .output()
              .split('\n')
              .filter((x) => x.startsWith('got ')),
            [`got ${a.address} open`],
          );
        } finally {
          await listener.stop();
        }
      });

      it("a flow refused to one peer leaves another peer's download under way intact (SHA-256)", async () => {
        await start(mode);
        await labServerAdded();
        other ??= await anotherUser();
        let finished = false;
        const download = runCaged(
          l,
          ['sh', '-c', `curl -sS --limit-rate ${RATE} --max-time 150 http://${INET4}:${HTTP_PORT}/big | sha256sum`],
          { timeoutMs: 170_000 },
        ).finally(() => {
          finished = true;
        });
        // Seen from the internet host, which both modes have: the download's connection is up.
        const underWay = async () =>
          (await l.inet.runOrThrow('ss', ['-Htn', 'state', 'established', `sport = :${HTTP_PORT}`])).stdout.trim() !== '';
        await waitFor(underWay, { what: 'the download to be under way', timeoutMs: 30_000, intervalMs: 100, describe: describeAll });
        // TCP, whose refusal is a reset (the kernel NAT's reject, the userspace NAT's relay) sent into the tunnel.
        const refused = [LAN_HOST, '169.254.169.254'];
        const b = await runCaged(other, ['sh', '-c', refused.map((a) => `${process.execPath} ${PROBE} tcp ${a} ${HTTP_PORT}`).join('; ')]);
        assert.equal(b.code, 0, `${b.stderr}\n${describeAll()}`);
        refusedEach(b.stdout.trim().split('\n'), refused);
        assert.equal(finished, false, "the download ended before the other peer's probes: it proves nothing (make it longer)");
        const r = await download;
        assert.equal(r.code, 0, `${r.stderr}\n${describeAll()}`);
        assert.equal(r.stdout.split(/\s/)[0], bigSha256, 'the download was cut or damaged');
        // The premise: two peers. Two cages of one user share its client key, so one peer, one address, and
        // one WireGuard session (whose latest handshake takes the other cage's packets): that broke this download.
        assert.notEqual(leaseAddress(other), leaseAddress(l));
      });
    });
  }

  /** The lab as another user sees it: a config directory (so a client key, a peer and an address) of its own. */
  async function anotherUser(): Promise<SrvLab> {
    const dir = await lab.tempDir();
    const o = { ...l, env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') } };
    await addServer(o, 'lab');
    return o;
  }

  /** The tunnel address the server gave `who`'s cages, from the registration `wirecage run` keeps. */
  const leaseAddress = (who: SrvLab): string =>
    (
      JSON.parse(readFileSync(join(who.env.XDG_CONFIG_HOME!, 'wirecage', 'keys', 'lab.lease.json'), 'utf8')) as {
        registration: { client_address: string };
      }
    ).registration.client_address;

  /** Opens a hole in the kernel NAT's input chain: TCP from peers to `address`, `port`. */
  const acceptInput = (address: string, port: number) =>
    l.srv.runOrThrow('nft', [
      'insert',
      'rule',
      'inet',
      'wirecagesrv_nat',
      'input',
      'ip',
      'daddr',
      address,
      'tcp',
      'dport',
      String(port),
      'accept',
    ]);

  // After the modes' suites (mocha runs a suite's own tests before its children).
  describe('port forwards', () => {
    it('a forward outside --forward-ports is refused (403, naming the range) and nothing listens; one inside is made', async () => {
      await start('userspace');
      if (peers.length === 0) await addPeers();
      const key = peers[0]!.go.publicKey;
      const squat = (
        await admin('POST', { client_public_key: key, protocol: 'tcp', public_port: SQUAT_PORT, target_port: 22 })
      ).stdout.split('\n');
      assert.equal(squat[1], '403', squat[0]);
      assert.match((JSON.parse(squat[0]!) as { error: string }).error, /outside the ports this server forwards \(20000-29999\)/);
      const listening = async (port: number) => (await l.srv.runOrThrow('ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== '';
      assert.equal(await listening(SQUAT_PORT), false);
      assert.equal(
        (await nsRun(l.inet, process.execPath, [PROBE, 'tcp', SRV_INET4, String(SQUAT_PORT)], { timeoutMs: 10_000 })).stdout.trim(),
        'connect-error ECONNREFUSED',
      );
      const made = (
        await admin('POST', { client_public_key: key, protocol: 'tcp', public_port: 20000 + SQUAT_PORT, target_port: 22 })
      ).stdout.split('\n');
      assert.equal(made[1], '201', made[0]);
      assert.equal(await listening(20000 + SQUAT_PORT), true);
      await server!.stop(10_000);
    });
  });

  /** Two wireguard-go peers in namespaces of their own, registered with curl. */
  async function addPeers(): Promise<void> {
    for (const label of ['p1', 'p2']) {
      const ns = await lab.namespace(label);
      const link = await lab.veth(l.srv, ns, { v6: false });
      const go = await startWireguardGo(ns, {});
      const answer = await register(go.publicKey);
      await go.setPeer({
        publicKey: answer.server_public_key,
        endpoint: `${link.a.v4}:51820`,
        allowedIps: ['10.200.100.0/24'],
        persistentKeepalive: 5,
      });
      await ns.addAddress(go.ifname, `${answer.client_address.split('/')[0]}/24`);
      peers.push({ go, address: answer.client_address.split('/')[0]! });
    }
  }

  async function register(publicKey: string): Promise<{ client_address: string; server_public_key: string }> {
    const body = join(l.dir, `register-${peers.length}.json`);
    await writeFile(body, JSON.stringify({ client_public_key: publicKey }));
    const r = await l.cli.runOrThrow('curl', [
      '-sS',
      '--max-time',
      '5',
      '-H',
      'Content-Type: application/json',
      '-H',
      `@${authHeader}`,
      '--data-binary',
      `@${body}`,
      `http://${l.srvAddr}:8443/v1/register`,
    ]);
    return JSON.parse(r.stdout) as { client_address: string; server_public_key: string };
  }

  async function handshake(p: { go: WireguardGoPeer }): Promise<void> {
    await waitFor(async () => (await p.go.ns.run('ping', ['-n', '-c', '1', '-W', '1', GATEWAY4], { timeoutMs: 3000 })).code === 0, {
      what: `${p.go.ns.name} to ping the gateway through the tunnel`,
      timeoutMs: 20_000,
      intervalMs: 200,
      describe: describeAll,
    });
  }

  /** Opens what the fix closed, in the namespace where peers' packets land (forwarding is on there by now): its forward chain accepts them. */
  async function openForwarding(mode: Mode): Promise<void> {
    if (mode === 'kernel')
      await l.srv.runOrThrow('nft', [
        'insert',
        'rule',
        'inet',
        'wirecagesrv_nat',
        'forward',
        'iifname',
        'wcs0',
        'oifname',
        'wcs0',
        'accept',
      ]);
    else await nsRunIn(natNamespace(server!.pid!), 'nft', ['add', 'rule', 'inet', 'wirecagesrv', 'forward', 'accept']);
  }
});

/** The NAT namespace of a userspace server: the network namespace stage 2 holds by fd that is not its own. */
function natNamespace(root: number): string {
  const parents = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const tree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (tree.has(ppid) && !tree.has(pid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of tree) {
    try {
      const ownNs = readlinkSync(`/proc/${pid}/ns/net`);
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('net:[') && target !== ownNs) return `/proc/${pid}/fd/${fd}`;
      }
    } catch {
      // not ours to read, or gone
    }
  }
  throw new Error(`no NAT namespace held by a process under pid ${root}`);
}

/** `cmd` in the namespace at `netnsPath` (the test runs as root, which may enter the server's). */
async function nsRunIn(netnsPath: string, cmd: string, args: string[]): Promise<string> {
  const r = await run('nsenter', [`--net=${netnsPath}`, cmd, ...args], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`nsenter ${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
