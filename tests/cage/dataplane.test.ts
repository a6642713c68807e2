// The sharded data plane under a real cage: bulk TCP through it in both
// directions with several worker counts, no reordering added by the
// sharding, the outer sockets (one SO_REUSEPORT group, one per shard, closed
// to other users), and the metrics endpoint serving shard and ring counters.
// wirecage runs in the lab's client namespace; its peer is wireguard-go.
import assert from 'node:assert/strict';
import { Lab } from '../lib/netns.js';
import { cageClient, cageLab, spawnWirecage, wirecage, type CageLab } from '../lib/cage.js';
import { joinReusePort, udpSockets } from '../lib/reuseport.js';
import { iperfReport, startIperfServer, withIperfServer } from '../lib/iperf.js';
import { createTestUser } from '../lib/test-user.js';
import { waitFor } from '../lib/wait.js';

/** A port nothing in the client namespace binds. */
const FREE_PORT = 51899;

describe('wirecage run: the sharded data plane', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let c: CageLab;
  let conf: string;
  after(() => lab.teardown());

  before(async () => {
    c = await cageLab(lab, { servers: 1 });
    const srv = c.servers[0]!;
    ({ conf } = await cageClient(srv, c.dir, 'dp'));
  });

  /** iperf3 in a cage with `workers` shards against a fresh server on the lab's wireguard-go side; -R when `reverse`. */
  const cagedIperf = (workers: number, reverse: boolean, test: string[]) => {
    const srv = c.servers[0]!;
    return withIperfServer(srv.ns, srv.v4, (server) =>
      wirecage(
        c.client,
        [
          '-c',
          conf,
          '--workers',
          String(workers),
          '--',
          'iperf3',
          '-c',
          srv.v4,
          '-p',
          String(server.port),
          ...test,
          '-t',
          '2',
          '-J',
          ...(reverse ? ['-R'] : []),
        ],
        { timeoutMs: 40_000 },
      ),
    );
  };

  for (const workers of [0, 1, 2, 4]) {
    it(`carries bulk TCP both ways with --workers ${workers}`, async () => {
      for (const reverse of [false, true]) {
        const r = await cagedIperf(workers, reverse, []);
        assert.equal(r.code, 0, r.stderr + r.stdout.slice(0, 2000));
        const got = iperfReport<{ end: { sum_received: { bytes: number } } }>(r.stdout);
        assert.ok(
          got.end.sum_received.bytes > 1_000_000,
          `only ${got.end.sum_received.bytes} bytes arrived (${reverse ? 'to' : 'from'} the cage)`,
        );
      }
    });
  }

  it('adds no reordering: numbered datagrams through two shards arrive in order, both ways', async () => {
    // iperf3 UDP counts datagrams that arrive after a later one (loss does not count).
    // A flow stays on one TUN queue and a peer on one socket, so one shard carries it in order: sharding must add none.
    for (const reverse of [false, true]) {
      const r = await cagedIperf(2, reverse, ['-u', '-b', '300M', '-l', '1300']);
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(0, 2000));
      const sum = iperfReport<{ end: { streams?: { udp: { packets: number; out_of_order: number } }[] } }>(r.stdout).end.streams?.[0]?.udp;
      assert.ok(sum, `iperf3 reported no stream (${reverse ? 'to' : 'from'} the cage): ${r.stdout.slice(-2000)}`);
      assert.ok(sum.packets > 10_000, `only ${sum.packets} datagrams`);
      assert.equal(
        sum.out_of_order,
        0,
        `${sum.out_of_order} of ${sum.packets} datagrams out of order (${reverse ? 'to' : 'from'} the cage)`,
      );
    }
  });

  it("binds its port as one SO_REUSEPORT group of stage 2's sockets, one per shard, which another user cannot join", async () => {
    const stranger = await createTestUser(lab, `${lab.id}d`);
    const srv = c.servers[0]!;
    const cage = spawnWirecage(c.client, [
      '-c',
      conf,
      '--workers',
      '2',
      '--',
      'sh',
      '-c',
      `ping -c 1 -W 5 ${srv.v4} >/dev/null && echo up && sleep 30`,
    ]);
    try {
      await waitFor(
        () => {
          cage.assertRunning();
          return cage.output().includes('up');
        },
        { what: 'the cage to ping', timeoutMs: 20_000, describe: () => cage.describe() },
      );
      // The cage's outer sockets live where wirecage runs (the client namespace), held by its stage 2.
      const ours = (await udpSockets(c.client)).filter((s) => s.holders.some((h) => h.cmdline.includes('cage/stage2.js')));
      const port = ours[0]?.port ?? 0;
      const group = (await udpSockets(c.client)).filter((s) => s.port === port);
      const what = JSON.stringify(group, null, 1);
      assert.equal(group.length, 2, `two sockets on the cage's port: ${what}`);
      const holders = group.flatMap((s) => s.holders);
      assert.equal(new Set(holders.map((h) => h.pid)).size, 1, `one process holds them: ${what}`);
      assert.match(holders[0]!.cmdline, /cage\/stage2\.js/, what);
      assert.equal(await joinReusePort(c.client, port, stranger), 'EADDRINUSE');
      // The probe works for that user on a free port, and the group's own uid may join (and leaves at
      // once): it is the kernel's uid check on the group that keeps the stranger out.
      assert.equal(await joinReusePort(c.client, FREE_PORT, stranger), 'joined');
      assert.equal(await joinReusePort(c.client, port), 'joined');
    } finally {
      await cage.stop();
    }
  });

  it('serves shard, ring, coalescing and peer counters on --metrics-listen (host side of the cage)', async () => {
    const srv = c.servers[0]!;
    const port = 9464;
    const iperf = await startIperfServer(srv.ns, srv.v4);
    const cage = spawnWirecage(c.client, [
      '-c',
      conf,
      '--workers',
      '2',
      '--metrics-listen',
      `127.0.0.1:${port}`,
      '--',
      'sh',
      '-c',
      `ping -c 20 -i 0.05 -q ${srv.v4} && iperf3 -c ${srv.v4} -p ${iperf.port} -R -t 1 >/dev/null && echo pinged && sleep 30`,
    ]);
    try {
      await waitFor(
        () => {
          cage.assertRunning();
          return cage.output().includes('pinged');
        },
        { what: 'the cage to ping', timeoutMs: 20_000, describe: () => cage.describe() },
      );
      // Scraped from the client namespace: the metrics listen where wirecage runs, not in the cage.
      const text = (await c.client.run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${port}/metrics`])).stdout;
      const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
      assert.equal(value(/^wirecage_shards\{[^}]*\} (\d+)$/m), 2);
      const egress =
        value(/^wirecage_shard_packets_total\{[^}]*shard="0"[^}]*direction="egress"[^}]*\} (\d+)$/m) +
        value(/^wirecage_shard_packets_total\{[^}]*shard="1"[^}]*direction="egress"[^}]*\} (\d+)$/m);
      assert.ok(egress >= 20, `shards sealed ${egress} packets:\n${text}`);
      assert.ok(value(/^wirecage_ring_packets_total\{[^}]*ring="ingress"[^}]*outcome="emitted"[^}]*\} (\d+)$/m) >= 20, text);
      assert.ok(value(/^wireguard_peer_transmit_bytes_total\{[^}]*\} (\d+)$/m) > 20 * 100, text);
      assert.ok(value(/^wireguard_peer_receive_bytes_total\{[^}]*\} (\d+)$/m) > 20 * 100, text);
      assert.ok(value(/^wireguard_peer_last_handshake_seconds\{[^}]*\} ([\d.]+)$/m) > 1.7e9, text);
      assert.match(text, /^wirecage_shard_restarts_total\{[^}]*shard="1"[^}]*\} 0$/m);
      // The download into the cage reached its TCP stack as coalesced super-packets.
      const coalesced = [...text.matchAll(/^wirecage_shard_coalesced_packets_total\{[^}]*\} (\d+)$/gm)].reduce(
        (t, m) => t + Number(m[1]),
        0,
      );
      assert.ok(coalesced > 100, `${coalesced} segments coalesced:\n${text}`);
    } finally {
      await cage.stop();
      await iperf.stop();
    }
  });
});
