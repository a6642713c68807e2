// wirecagesrv's Prometheus endpoint (--metrics-listen): the engine's series
// (peers, shards, rings) and the server's own (registry, forwards, NAT),
// scraped inside the server's namespace after a cage has used the NAT.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { GATEWAY4, INET4, LAN_HOST, addServer, runCaged, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';

const PROBE = fileURLToPath(new URL('./fixtures/nat-probe.mjs', import.meta.url));

describe('wirecagesrv --metrics-listen', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess;
  after(async () => {
    await server?.stop();
    await lab.teardown();
  });

  before(async () => {
    l = await srvLab(lab, { built: ['apps/wirecagesrv/dist/metrics.js'] });
    server = await startWirecagesrv(l, ['--metrics-listen', '127.0.0.1:9587', '--workers', '2', '--node-name', 'lab-node-1']);
    await addServer(l, 'lab');
  });

  it('serves peers, data plane, registry and NAT series, counted as traffic happens', async () => {
    // One cage: a ping to the gateway, a connection to a closed port out there (relayed, the
    // connect fails: a reset), one to the server's LAN (refused by the egress policy).
    // A datagram to a closed UDP port brings a port unreachable back through the NAT.
    const r = await runCaged(l, [
      'sh',
      '-c',
      `ping -n -c 3 -i 0.2 ${GATEWAY4} >/dev/null && echo pinged; ` +
        `curl -s -m 3 http://${INET4}:9/ ; echo closed=$?; curl -s -m 3 http://${LAN_HOST}:8080/ ; echo lan=$?; ` +
        `${process.execPath} ${PROBE} udprefused ${INET4} 9`,
    ]);
    assert.match(r.stdout, /^pinged$/m, r.stderr);
    assert.match(r.stdout, /^closed=(7|56)$/m);
    assert.match(r.stdout, /^lan=(7|56)$/m);
    assert.match(r.stdout, /^refused$/m);

    const text = (await l.srv.runOrThrow('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:9587/metrics'])).stdout;
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.equal(value(/^wirecagesrv_peers_registered (\d+)$/m), 1, text);
    assert.equal(value(/^wireguard_peers\{device="wcs0"\} (\d+)$/m), 1, text);
    assert.equal(value(/^wirecage_shards\{device="wcs0"\} (\d+)$/m), 2, text);
    assert.equal(value(/^wirecagesrv_forwards_listening (\d+)$/m), 0, text);
    // One server is a fleet of one, holding the one peer's session.
    assert.equal(value(/^wirecagesrv_node_info\{node="lab-node-1"\} (\d+)$/m), 1, text);
    assert.equal(value(/^wirecagesrv_fleet_nodes (\d+)$/m), 1, text);
    assert.equal(value(/^wirecagesrv_fleet_sessions\{node="lab-node-1"\} (\d+)$/m), 1, text);
    assert.ok(value(/^wireguard_peer_receive_bytes_total\{[^}]*\} (\d+)$/m) > 0, text);
    // One peer's packets arrive on one shard's socket (the kernel hashes a peer to one): summed over the shards.
    const ingress = [...text.matchAll(/^wirecage_shard_packets_total\{[^}]*direction="ingress"[^}]*\} (\d+)$/gm)];
    assert.equal(ingress.length, 2, text);
    assert.ok(ingress.reduce((t, m) => t + Number(m[1]), 0) > 0, text);
    assert.ok(value(/^wirecagesrv_nat_flows_total\{protocol="tcp"\} (\d+)$/m) >= 1, text);
    assert.ok(value(/^wirecagesrv_nat_refused_total\{protocol="tcp",by="policy"\} (\d+)$/m) >= 1, text);
    assert.ok(value(/^wirecagesrv_nat_dropped_total\{what="tcp_connect_failure"\} (\d+)$/m) >= 1, text);
    assert.match(text, /^wirecagesrv_nat_active_flows\{mode="userspace"\} \d+$/m);
    assert.ok(value(/^wirecagesrv_nat_icmp_errors_total\{outcome="sent"\} (\d+)$/m) >= 1, text);
    assert.match(text, /^wirecagesrv_nat_icmp_errors_total\{outcome="limited"\} 0$/m);
  });
});
