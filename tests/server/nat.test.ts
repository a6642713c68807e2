// wirecagesrv's userspace NAT end to end: a cage (`wirecage add-server` +
// `wirecage run NAME`) in the client namespace, `wirecagesrv up` in the server
// namespace, and an "internet" namespace with HTTP and UDP echo on IPv4 and
// IPv6. The server namespace also has a LAN (192.168.99.0/24) with a service
// on its own LAN address, which the egress policy must refuse. The lab's
// internet uses private and ULA prefixes, opened with --allow-dest; nothing
// leaves the lab's namespaces.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chown, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ExecResult } from '../lib/exec.js';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { Lab, nsRun, type Netns } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import {
  INET4,
  INET6,
  SRV_INET4,
  SRV_INET6,
  LAN_HOST,
  SRV_TOKEN as TOKEN,
  addServer,
  runCaged,
  srvLab,
  startWirecagesrv,
  type SrvLab,
} from '../lib/srv-lab.js';
import { NAT_PROBE, closedPortOutcome, halfCloseAnswers, natProbes, startInternet } from '../lib/srv-internet.js';
import { openTunToEveryone } from '../lib/test-user.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const PROBE = NAT_PROBE;
const BIG = 50 * 1024 * 1024;

describe('wirecagesrv userspace NAT', function () {
  this.timeout(180_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let srv: Netns;
  let cli: Netns;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let bigSha256: string;
  let server: LabProcess;

  const caged = (cmd: string[], timeoutMs = 60_000): Promise<ExecResult> => runCaged(l, cmd, { timeoutMs });
  const probes = (...runs: string[][]) => natProbes(l, server, ...runs);

  /** `wirecagesrv up` in the server namespace; `as` runs it as another (unprivileged) user, with its own ports and state. */
  const startServer = (extra: string[] = [], as?: { uid: number; home: string; token: string }): Promise<LabProcess> =>
    startWirecagesrv(l, extra, as);

  before(async () => {
    l = await srvLab(lab);
    ({ srv, cli, dir, env } = l);
    ({ bigSha256 } = await startInternet(l.inet, '::', BIG));
    await startInternet(l.lan, LAN_HOST);
    server = await startServer();
    await addServer(l, 'lab');
  });

  it("fetches over HTTP through the NAT, from the server's address; the gateway answers ping", async () => {
    const r = await caged([
      'sh',
      '-c',
      `curl -sS --max-time 10 http://${INET4}:8080/hello && ping -n -c 1 -W 3 10.200.100.1 >/dev/null && echo pong`,
    ]);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout, 'hello 10.99.1.1\npong\n');
  });

  it('carries a 50 MB download intact (SHA-256)', async () => {
    const r = await caged(['sh', '-c', `curl -sS --max-time 100 http://${INET4}:8080/big | sha256sum`], 120_000);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout.split(/\s/)[0], bigSha256);
  });

  it('carries IPv6 to an IPv6 host', async () => {
    const r = await caged(['curl', '-sS', '-g', '--max-time', '10', `http://[${INET6}]:8080/hello`]);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout, 'hello fd7a:99:1::1\n');
  });

  it('echoes UDP, the reply coming from the original destination (IPv4 and IPv6)', async () => {
    assert.deepEqual(await probes(['udp', INET4, '7', 'ping4'], ['udp', INET6, '7', 'ping6']), [
      `reply ${INET4} 7 echo 10.99.1.1 ping4`,
      `reply ${INET6} 7 echo fd7a:99:1::1 ping6`,
    ]);
  });

  it('passes a port unreachable back to the cage (ECONNREFUSED on its connected socket, IPv4 and IPv6); refused destinations stay silent', async () => {
    const r = await probes(['udprefused', INET4, '9'], ['udprefused', INET6, '9'], ['udprefused', LAN_HOST, '9']);
    assert.deepEqual(r, ['refused', 'refused', 'timeout'], server.describe());
  });

  it('carries UDP datagrams larger than the tunnel MTU both ways, fragmented (IPv4 and IPv6)', async () => {
    // The internet host counts the fragments it gets from the server, and the server's namespace those of the
    // replies: the datagrams crossed the lab as fragments both ways. Counted before any reassembly (priority -450).
    const counting = (ns: Netns, from4: string, from6: string) =>
      ns.runOrThrow('nft', ['-f', '-'], {
        input: `table inet wctfrag {
  counter v4 {}
  counter v6 {}
  chain prerouting {
    type filter hook prerouting priority -450; policy accept;
    ip saddr ${from4} ip frag-off & 0x1fff != 0 counter name v4
    ip6 saddr ${from6} exthdr frag exists counter name v6
  }
}
`,
      });
    const fragments = async (ns: Netns): Promise<Record<string, number>> => {
      const json = JSON.parse((await ns.runOrThrow('nft', ['-j', 'list', 'counters', 'table', 'inet', 'wctfrag'])).stdout) as {
        nftables: { counter?: { name: string; packets: number } }[];
      };
      return Object.fromEntries(json.nftables.flatMap((i) => (i.counter ? [[i.counter.name, i.counter.packets]] : [])));
    };
    await counting(l.inet, SRV_INET4, SRV_INET6);
    await counting(srv, INET4, INET6);
    try {
      assert.deepEqual(
        await probes(
          ['udpsize', INET4, '7', '3000'],
          ['udpsize', INET4, '7', '8000'],
          ['udpsize', INET4, '7', '60000'],
          ['udpsize', INET6, '7', '3000'],
          ['udpsize', INET6, '7', '8000'],
          ['udpsize', INET6, '7', '60000'],
        ),
        [
          'echoed 3000 intact',
          'echoed 8000 intact',
          'echoed 60000 intact',
          'echoed 3000 intact',
          'echoed 8000 intact',
          'echoed 60000 intact',
        ],
      );
      // Later fragments at a 1500-byte MTU: 1 + 5 + 40 per family, at least, each way.
      const counted = { requests: await fragments(l.inet), replies: await fragments(srv) };
      for (const c of [counted.requests, counted.replies]) for (const f of ['v4', 'v6']) assert.ok(c[f]! >= 46, JSON.stringify(counted));
    } finally {
      await l.inet.runOrThrow('nft', ['delete', 'table', 'inet', 'wctfrag']);
      await srv.runOrThrow('nft', ['delete', 'table', 'inet', 'wctfrag']);
    }
  });

  it('carries half-close both ways: the destination answers after the client has finished sending', async () => {
    assert.deepEqual(await halfCloseAnswers(l, server), ['answer got 300000', 'answer got 1000']);
  });

  it('resets a connection to a closed port instead of closing it cleanly', async () => {
    const r = await closedPortOutcome(l);
    const [v4, v6, curl] = r.lines;
    assert.equal(v4, 'reset');
    assert.equal(v6, 'reset');
    assert.ok(curl === 'curl 56' || curl === 'curl 7', `${curl} (56: reset, 7: refused; 52 would be a clean close): ${r.stderr}`);
    // curl words a refused connection (exit 7) either way, depending on when the RST meets its connect.
    assert.match(r.stderr, /reset|refused|couldn't connect/i);
  });

  it("refuses the server's own LAN: TCP reset, UDP dropped", async () => {
    assert.deepEqual(await probes(['tcp', LAN_HOST, '8080'], ['udp', LAN_HOST, '7', 'x']), ['reset', 'timeout']);
  });

  it('survives a server restart mid-session (with --allow-lan now): the cage keeps its address and fetches again', async () => {
    const log = join(dir, 'loop.log');
    const loop = `while :; do curl -s -m 2 -o /dev/null -w '%{http_code}\\n' http://${INET4}:8080/hello >> ${log}; ip -o -4 addr show dev wirecage | awk '{print "addr", $4}' >> ${log}; sleep 0.2; done`;
    // The log's directory is under /tmp, private in the cage: shared by name.
    const cage = cli.spawn(process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--share', dir, '--', 'sh', '-c', loop], { env });
    const lines = async () => (existsSync(log) ? (await readFile(log, 'utf8')).split('\n') : []);
    const addrBefore = await waitFor(
      async () => {
        cage.assertRunning();
        const l = await lines();
        return l.includes('200') && l.find((x) => x.startsWith('addr '));
      },
      { what: "the cage's first fetch", timeoutMs: 20_000, describe: () => cage.describe() },
    );

    const exit = await server.stop();
    assert.equal(exit.code, 0, server.describe());
    const mark = (await lines()).length;
    server = await startServer(['--allow-lan']);
    const restarted = Date.now();
    await waitFor(async () => (cage.assertRunning(), (await lines()).slice(mark).includes('200')), {
      what: 'a fetch through the restarted server',
      // The restarted server initiates a handshake to the endpoint it recorded for the peer,
      // so traffic resumes within a round trip and a curl retry, not after the client's own
      // 15 s (Keepalive-Timeout + Rekey-Timeout) of unanswered packets.
      timeoutMs: 6_000,
      intervalMs: 200,
      describe: () => `${cage.describe()}\n${server.describe()}`,
    });
    const after = (await lines()).slice(mark);
    assert.equal(after.filter((l) => l.startsWith('addr ')).at(-1), addrBefore, 'the cage keeps its address');
    assert.ok(Date.now() - restarted < 6_000, `traffic resumed ${Date.now() - restarted} ms after the restart`);
    await cage.stop();

    // Allowed now: the same LAN service answers.
    assert.deepEqual(await probes(['tcp', LAN_HOST, '8080']), ['data HTTP/1.1 200 OK']);
  });

  it('runs without root: stage 2 is root only in a user namespace of its own, and the NAT works, ICMP errors included', async () => {
    const nobody = 65534;
    await openTunToEveryone(lab);
    const home = await lab.tempDir();
    const token = await writeSecretFile(home, 'token', `${TOKEN}\n`);
    await chown(home, nobody, nobody);
    await chown(token, nobody, nobody);
    const unprivileged = await startServer([], { uid: nobody, home, token });
    try {
      await addServer(l, 'lab2', 8444);
      // The port unreachable comes back too: the raw sockets of the ICMP errors need CAP_NET_RAW, held in stage 2's own user namespace.
      const script = `curl -sS --max-time 10 http://${INET4}:8080/hello && ${process.execPath} ${PROBE} udprefused ${INET4} 9`;
      const r = await nsRun(cli, process.execPath, [WIRECAGE_BIN, 'run', 'lab2', '--wait-handshake', '10', '--', 'sh', '-c', script], {
        env,
        timeoutMs: 60_000,
      });
      assert.equal(r.code, 0, `${r.stderr}\n${unprivileged.describe()}`);
      assert.equal(r.stdout, 'hello 10.99.1.1\nrefused\n', unprivileged.describe());
      assert.match(unprivileged.output(), /NAT userspace/);
    } finally {
      await unprivileged.stop();
    }
  });
});
