// A wg-engine endpoint without the cage around it, to measure the data plane
// apart from the cage: the TUN (a queue per shard), the UDP sockets and the
// engine live in the namespace this runs in (as wireguard-go's do), wired by
// attachDevice as stage 2 wires a cage.
// Run inside a lab namespace: `node --import tsx engine-peer.ts CONFIG.json`.
// CONFIG (0600, keys never in argv) holds the fields of EngineConfig. Prints
// `ready <udp port>` once the device is up; SIGTERM closes everything.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Tun } from '@wirecage/tun';
import { Device, Endpoint, parseCidr, parseKeyBase64, silentLogger } from '@wirecage/wg-engine';
import { attachDevice } from '@wirecage/wg-engine/data-plane';

export interface EngineConfig {
  privateKey: string;
  peerPublicKey: string;
  peerEndpoint: string;
  allowedIps: string[];
  /** This side's tunnel address, CIDR. */
  address: string;
  mtu: number;
  workers: number;
  offload: boolean;
  ifname: string;
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: engine-peer.ts CONFIG.json\n');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(file, 'utf8')) as EngineConfig;
// A queue per shard, so each shard reads its own (the kernel keeps a flow on one queue).
const tun = Tun.open({ name: cfg.ifname, mtu: cfg.mtu, offload: cfg.offload, queues: Math.max(1, cfg.workers) });
execFileSync('ip', ['addr', 'add', cfg.address, 'dev', tun.name]);
execFileSync('ip', ['link', 'set', 'dev', tun.name, 'mtu', String(cfg.mtu), 'up']);
const device = new Device({ mtu: cfg.mtu, logger: silentLogger });
device.setPrivateKey(parseKeyBase64(cfg.privateKey, 'privateKey'));
device.setPeer(parseKeyBase64(cfg.peerPublicKey, 'peerPublicKey'), {
  presharedKey: null,
  endpoint: Endpoint.parse(cfg.peerEndpoint),
  allowedIps: cfg.allowedIps.map((a) => parseCidr(a)),
  persistentKeepalive: 0,
});
const attached = await attachDevice(device, tun, { listenPort: 0, workers: cfg.workers });
device.up();
process.stdout.write(`ready ${attached.port}\n`);

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  void attached.close().finally(() => {
    device.close();
    tun.close();
    process.exit(0);
  });
});
