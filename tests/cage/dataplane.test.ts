// The sharded data plane under a real cage: bulk TCP through it in both
// directions with several worker counts, no reordering added by the
// sharding, and the metrics endpoint serving shard and ring counters.
// wirecage runs in the lab's client namespace; its peer is wireguard-go.
import assert from 'node:assert/strict';
import { Lab } from '../lib/netns.js';
import { cageClient, cageLab, spawnWirecage, wirecage, type CageLab } from '../lib/cage.js';
import { waitFor } from '../lib/wait.js';

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
    srv.ns.spawn('iperf3', ['-s', '-B', srv.v4]);
    await waitFor(async () => (await srv.ns.run('ss', ['-ltn', `sport = :5201`])).stdout.includes('5201'), { what: 'iperf3 to listen' });
  });

  for (const workers of [0, 1, 2, 4]) {
    it(`carries bulk TCP both ways with --workers ${workers}`, async () => {
      const srv = c.servers[0]!;
      for (const reverse of [false, true]) {
        const r = await wirecage(
          c.client,
          ['-c', conf, '--workers', String(workers), '--', 'iperf3', '-c', srv.v4, '-t', '2', '-J', ...(reverse ? ['-R'] : [])],
          { timeoutMs: 40_000 },
        );
        assert.equal(r.code, 0, r.stderr + r.stdout.slice(0, 2000));
        const got = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
        assert.ok(
          got.end.sum_received.bytes > 1_000_000,
          `only ${got.end.sum_received.bytes} bytes arrived (${reverse ? 'to' : 'from'} the cage)`,
        );
      }
    });
  }

  it('adds no reordering: numbered datagrams through two shards arrive in order, both ways', async () => {
    // iperf3 UDP counts datagrams that arrive after a later one (loss does not count).
    // The rings are consumed in the order they were filled, so sharding must add none.
    const srv = c.servers[0]!;
    for (const reverse of [false, true]) {
      const r = await wirecage(
        c.client,
        [
          '-c',
          conf,
          '--workers',
          '2',
          '--',
          'iperf3',
          '-c',
          srv.v4,
          '-u',
          '-b',
          '300M',
          '-l',
          '1300',
          '-t',
          '2',
          '-J',
          ...(reverse ? ['-R'] : []),
        ],
        { timeoutMs: 40_000 },
      );
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(0, 2000));
      const sum = (JSON.parse(r.stdout) as { end: { streams: { udp: { packets: number; out_of_order: number } }[] } }).end.streams[0]!.udp;
      assert.ok(sum.packets > 10_000, `only ${sum.packets} datagrams`);
      assert.equal(
        sum.out_of_order,
        0,
        `${sum.out_of_order} of ${sum.packets} datagrams out of order (${reverse ? 'to' : 'from'} the cage)`,
      );
    }
  });

  it('serves shard, ring, coalescing and peer counters on --metrics-listen (host side of the cage)', async () => {
    const srv = c.servers[0]!;
    const port = 9464;
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
      `ping -c 20 -i 0.05 -q ${srv.v4} && iperf3 -c ${srv.v4} -R -t 1 >/dev/null && echo pinged && sleep 30`,
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
    }
  });
});
