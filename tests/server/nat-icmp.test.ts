// Ping through wirecagesrv's userspace NAT: a cage pings hosts in the lab's
// "internet" namespace, which counts the echo requests that reach it (nftables
// counters there) and from which address. A reply must only ever come from a
// destination that answered: silent addresses and refused ones get nothing.
// The server's namespace starts with a new namespace's ping_group_range
// ("1 0", nobody may open ping sockets) and is opened up half-way, only there.
import assert from 'node:assert/strict';
import { Lab, type Netns } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import {
  GATEWAY4,
  GATEWAY6,
  INET4,
  INET6,
  LAN_HOST,
  SRV_INET4,
  SRV_INET6,
  addServer,
  runCaged,
  srvLab,
  startWirecagesrv,
  type SrvLab,
} from '../lib/srv-lab.js';

/** Counts the echo requests a namespace receives: from `server4`/`server6`, and from anyone else. */
async function countEchoRequests(ns: Netns, server4: string, server6: string): Promise<() => Promise<Record<string, number>>> {
  const table = `table inet wctcount {
  counter v4 {}
  counter v6 {}
  counter other {}
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request ip saddr ${server4} counter name v4 accept
    icmpv6 type echo-request ip6 saddr ${server6} counter name v6 accept
    icmp type echo-request counter name other accept
    icmpv6 type echo-request counter name other accept
  }
}
`;
  await ns.runOrThrow('nft', ['-f', '-'], { input: table });
  return async () => {
    const json = JSON.parse((await ns.runOrThrow('nft', ['-j', 'list', 'counters', 'table', 'inet', 'wctcount'])).stdout) as {
      nftables: { counter?: { name: string; packets: number } }[];
    };
    return Object.fromEntries(json.nftables.flatMap((i) => (i.counter ? [[i.counter.name, i.counter.packets]] : [])));
  };
}

interface PingResult {
  output: string;
  received: number;
}

/** Runs each ping in one cage (one registration) and reads how many replies each got. */
async function pings(l: SrvLab, server: LabProcess, runs: Record<string, string[]>): Promise<Record<string, PingResult>> {
  const script = Object.entries(runs)
    .map(([name, args]) => `echo '@@ ${name}'; ping -n ${args.join(' ')} 2>&1; true`)
    .join('; ');
  const r = await runCaged(l, ['sh', '-c', script], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
  const out: Record<string, PingResult> = {};
  for (const part of r.stdout.split('@@ ').slice(1)) {
    const name = part.slice(0, part.indexOf('\n'));
    const received = /(\d+) (?:packets )?received/.exec(part);
    assert.ok(received, `no ping statistics for ${name}:\n${part}`);
    out[name] = { output: part, received: Number(received[1]) };
  }
  return out;
}

describe('wirecagesrv userspace NAT: ping', function () {
  this.timeout(240_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let inetCount: () => Promise<Record<string, number>>;
  let lanCount: () => Promise<Record<string, number>>;

  before(async () => {
    l = await srvLab(lab);
    inetCount = await countEchoRequests(l.inet, SRV_INET4, SRV_INET6);
    lanCount = await countEchoRequests(l.lan, '192.168.99.1', '::1');
    server = await startWirecagesrv(l);
    await addServer(l, 'lab');
  });

  it('without ping sockets on the host, drops pings to the internet (saying why, once) and still answers from the gateway', async () => {
    const range = (await l.srv.runOrThrow('cat', ['/proc/sys/net/ipv4/ping_group_range'])).stdout.trim().split(/\s+/);
    assert.deepEqual(range, ['1', '0'], 'a new namespace allows no group');
    const r = await pings(l, server, {
      gw4: ['-c', '1', '-W', '3', GATEWAY4],
      gw6: ['-c', '1', '-W', '3', GATEWAY6],
      inet4: ['-c', '2', '-W', '1', INET4],
    });
    assert.equal(r.gw4!.received, 1, r.gw4!.output);
    assert.equal(r.gw6!.received, 1, r.gw6!.output);
    assert.equal(r.inet4!.received, 0, r.inet4!.output);
    assert.deepEqual(await inetCount(), { v4: 0, v6: 0, other: 0 });
    const warnings = server.output().match(/pings to the internet are dropped.*ping_group_range="0 0"/g) ?? [];
    assert.equal(warnings.length, 1, server.output());
  });

  describe("with ping sockets allowed in the server's namespace", () => {
    before(async () => {
      assert.equal((await server.stop()).code, 0, server.describe());
      // Per network namespace: only the lab's server namespace changes, never the machine's.
      await l.srv.sysctl('net.ipv4.ping_group_range', '0 2147483647');
      server = await startWirecagesrv(l);
    });

    it("relays pings to internet hosts (IPv4, IPv6, fragmented): each request leaves from the server's address, each reply comes from the host", async () => {
      const before = await inetCount();
      const r = await pings(l, server, {
        v4: ['-c', '3', '-W', '3', INET4],
        v6: ['-c', '3', '-W', '3', INET6],
        big: ['-c', '1', '-W', '3', '-s', '3000', INET4],
        big6: ['-c', '1', '-W', '3', '-s', '3000', INET6],
      });
      assert.equal(r.v4!.received, 3, `${r.v4!.output}\n${server.describe()}`);
      // The reply is the host's own (TTL 64), one hop further.
      assert.match(r.v4!.output, new RegExp(`bytes from ${INET4}: icmp_seq=1 ttl=63 `));
      assert.equal(r.v6!.received, 3, r.v6!.output);
      assert.match(r.v6!.output, new RegExp(`bytes from ${INET6}: icmp_seq=1 ttl=63 `));
      assert.equal(r.big!.received, 1, r.big!.output);
      assert.match(r.big!.output, /3008 bytes from/);
      assert.equal(r.big6!.received, 1, r.big6!.output);
      const after = await inetCount();
      assert.deepEqual(
        { v4: after.v4! - before.v4!, v6: after.v6! - before.v6!, other: after.other! - before.other! },
        { v4: 4, v6: 4, other: 0 },
        "every request reached the host once, from the server's address",
      );
      assert.doesNotMatch(server.output(), /pings to the internet are dropped/);
    });

    it("reports host unreachable, from the gateway, where no neighbour answers on the server's side (IPv4, IPv6)", async () => {
      // The server's host kernel gives up on ARP and neighbour discovery after 3 s and tells its ping socket.
      const started = Date.now();
      const r = await pings(l, server, {
        silent4: ['-c', '1', '-W', '8', '10.99.1.77'],
        silent6: ['-c', '1', '-W', '8', 'fd7a:99:1::77'],
      });
      assert.match(
        r.silent4!.output,
        new RegExp(`From ${GATEWAY4} icmp_seq=1 Destination Host Unreachable`),
        `${r.silent4!.output}\n${server.describe()}`,
      );
      assert.match(
        r.silent6!.output,
        new RegExp(`From ${GATEWAY6} icmp_seq=1 Destination unreachable: Address unreachable`),
        r.silent6!.output,
      );
      for (const name of ['silent4', 'silent6']) assert.equal(r[name]!.received, 0, r[name]!.output);
      assert.ok(Date.now() - started < 15_000, 'each error came before ping gave up waiting');
    });

    it('reports an unreachable at once, from the gateway, where the server has no route (IPv4, IPv6)', async () => {
      // Unreachable routes in the server's namespace for half of the lab's internet: the host's ping sockets cannot send there.
      await l.srv.runOrThrow('ip', ['route', 'add', 'unreachable', '10.99.1.128/25']);
      await l.srv.runOrThrow('ip', ['-6', 'route', 'add', 'unreachable', 'fd7a:99:1::8000/113']);
      try {
        const started = Date.now();
        const r = await pings(l, server, {
          v4: ['-c', '1', '-W', '8', '10.99.1.200'],
          v6: ['-c', '1', '-W', '8', 'fd7a:99:1::8001'],
        });
        assert.match(
          r.v4!.output,
          new RegExp(`From ${GATEWAY4} icmp_seq=1 Destination Host Unreachable`),
          `${r.v4!.output}\n${server.describe()}`,
        );
        assert.match(r.v6!.output, new RegExp(`From ${GATEWAY6} icmp_seq=1 Destination unreachable: Address unreachable`), r.v6!.output);
        assert.ok(Date.now() - started < 6_000, `${Date.now() - started} ms: not at once`);
      } finally {
        await l.srv.runOrThrow('ip', ['route', 'del', 'unreachable', '10.99.1.128/25']);
        await l.srv.runOrThrow('ip', ['-6', 'route', 'del', 'unreachable', 'fd7a:99:1::8000/113']);
      }
    });

    it('gets no reply where no host answers, nor from destinations the egress policy refuses', async () => {
      const before = await lanCount();
      const r = await pings(l, server, {
        silent4: ['-c', '2', '-W', '2', '10.99.1.77'],
        silent6: ['-c', '2', '-W', '2', 'fd7a:99:1::77'],
        lan: ['-c', '2', '-W', '2', LAN_HOST],
        metadata: ['-c', '1', '-W', '2', '169.254.169.254'],
        gw4: ['-c', '1', '-W', '3', GATEWAY4],
        gw6: ['-c', '1', '-W', '3', GATEWAY6],
      });
      for (const name of ['silent4', 'silent6', 'lan', 'metadata']) assert.equal(r[name]!.received, 0, `${name}: ${r[name]!.output}`);
      assert.doesNotMatch(r.lan!.output + r.silent4!.output, /bytes from/);
      assert.deepEqual(await lanCount(), before, "nothing reached the server's LAN");
      assert.equal(r.gw4!.received, 1, r.gw4!.output);
      assert.match(r.gw4!.output, new RegExp(`bytes from ${GATEWAY4}: icmp_seq=1 ttl=64 `));
      assert.equal(r.gw6!.received, 1, r.gw6!.output);
    });
  });
});
