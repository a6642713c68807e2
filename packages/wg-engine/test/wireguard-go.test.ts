// Interop on the data plane's one path: engine A (a TUN with a queue per
// shard and a SO_REUSEPORT socket group, in lab namespace `eng`) and
// wireguard-go (in `wgo`, configured by the real `wg` tool), joined by a veth.
// Each side initiates once; ping is answered by the other side's kernel.
// WIREGUARD_GO names the binary (default: wireguard-go on PATH).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNetnsSysctl } from '@wirecage/netns';
import { Lab, type LabNetns } from '@wirecage/netns/lab';
import { Tun, UdpSocket } from '@wirecage/tun';
import { DataPlane } from '../src/data/plane.js';
import { Device, Endpoint, generatePrivateKey, keyToBase64, parseCidr, publicKeyOf, systemClock } from '../src/index.js';
import { until } from './fixtures/rtc-lab.js';

const WIREGUARD_GO = process.env.WIREGUARD_GO ?? 'wireguard-go';
const ENGINE = '10.0.0.1';
const GO = '10.0.0.2';
const GO_PORT = 51820;
const MTU = 1420;

interface Setup {
  lab: Lab;
  eng: LabNetns;
  wgo: LabNetns;
  plane: DataPlane;
  /** Processes the test started in the lab, stopped (by their pid) before it goes. */
  started: ChildProcess[];
  close(): Promise<void>;
}

async function setup(workers: number, engineInitiates: boolean, offload = false): Promise<Setup> {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'wc-interop-'));
  const held: { close(): void }[] = [];
  let go: ChildProcess | null = null;
  let plane: DataPlane | null = null;
  const device = new Device({ clock: systemClock, mtu: MTU });
  const started: ChildProcess[] = [];
  const close = async () => {
    for (const p of started) p.kill();
    await plane?.close();
    for (const h of held.reverse()) h.close();
    device.close();
    go?.kill();
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const eng = lab.namespace('eng');
    const wgo = lab.namespace('wgo');
    const link = await lab.veth(eng, wgo, { v6: false });
    const shards = Math.max(workers, 1);
    const tun = Tun.open({ name: lab.uniqueIfname('wc'), netnsFd: eng.fd, queues: shards, mtu: MTU, offload });
    held.push(tun);
    writeNetnsSysctl(eng.fd, `/proc/sys/net/ipv6/conf/${tun.name}/disable_ipv6`, '1');
    eng.linkUp(tun.name);
    eng.addAddress(tun.name, `${ENGINE}/24`);
    const sockets = [UdpSocket.open({ family: 4, netnsFd: eng.fd, reusePort: true })];
    while (sockets.length < shards) sockets.push(UdpSocket.open({ family: 4, netnsFd: eng.fd, port: sockets[0]!.port, reusePort: true }));
    held.push(...sockets);

    // wireguard-go, its keys in files (never in argv or the environment).
    const ifname = lab.uniqueIfname('wg');
    const [cmd, ...args] = wgo.argv(WIREGUARD_GO, '-f', ifname);
    go = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'error' } });
    const sock = `/var/run/wireguard/${ifname}.sock`;
    await until(
      () => existsSync(sock),
      () => `${WIREGUARD_GO} made no UAPI socket ${sock}`,
      10_000,
    );
    const goKey = generatePrivateKey();
    const engineKey = generatePrivateKey();
    const keyFile = join(dir, 'go.key');
    writeFileSync(keyFile, `${keyToBase64(goKey)}\n`, { mode: 0o600 });
    const peerArgs = ['peer', keyToBase64(publicKeyOf(engineKey)), 'allowed-ips', `${ENGINE}/32`];
    if (!engineInitiates) peerArgs.push('endpoint', `${link.a.v4!}:${sockets[0]!.port}`);
    const set = await wgo.exec('wg', 'set', ifname, 'private-key', keyFile, 'listen-port', String(GO_PORT), ...peerArgs);
    assert.equal(set.code, 0, set.stderr);
    wgo.addAddress(ifname, `${GO}/24`);
    wgo.linkUp(ifname, MTU);

    device.setPrivateKey(engineKey);
    device.setPeer(publicKeyOf(goKey), {
      endpoint: engineInitiates ? Endpoint.of(link.b.v4!, GO_PORT) : null,
      allowedIps: [parseCidr(`${GO}/32`)],
    });
    device.up();
    plane = DataPlane.start(device, { io: { tun, sockets }, workers, vnetHdr: tun.offload.vnetHdr });
    return { lab, eng, wgo, plane, started, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** 10 pings of `size` bytes from `from` to `to`, 50 ms apart: fails unless every one is answered. */
async function pingAll(from: LabNetns, to: string, size: number): Promise<void> {
  const ping = await from.exec('ping', '-c', '10', '-i', '0.05', '-W', '3', '-s', String(size), to);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  assert.match(ping.stdout, /10 packets transmitted, 10 received, 0% packet loss/);
}

/** An iperf3 server on `at` in `ns`, once it listens. */
async function iperfServer(s: Setup, ns: LabNetns, at: string): Promise<void> {
  const [cmd, ...args] = ns.argv('iperf3', '-s', '-B', at, '--forceflush');
  const server = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  s.started.push(server);
  let out = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await until(
    () => out.includes('Server listening'),
    () => `iperf3 -s said: ${out}`,
    10_000,
  );
}

/** Bytes an iperf3 run from `ns` to `to` moved in 1 s (`reverse`: from the server). */
async function iperfBytes(ns: LabNetns, to: string, reverse: boolean): Promise<number> {
  const run = await ns.exec('iperf3', '-c', to, '-t', '1', '-J', ...(reverse ? ['-R'] : []));
  assert.equal(run.code, 0, run.stdout.slice(0, 2000) + run.stderr);
  return (JSON.parse(run.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
}

describe(`interop with ${WIREGUARD_GO} on the data plane's one path`, function () {
  this.timeout(60_000);
  let s: Setup | null = null;

  afterEach(async () => {
    await s?.close();
    s = null;
  });

  for (const workers of [0, 2]) {
    it(`the engine initiates (workers ${workers}): pings to wireguard-go's side are answered, small and near the MTU`, async () => {
      s = await setup(workers, true);
      await pingAll(s.eng, GO, 56);
      await pingAll(s.eng, GO, MTU - 28);
    });

    it(`wireguard-go initiates (workers ${workers}): pings to the engine's side are answered, small and near the MTU`, async () => {
      s = await setup(workers, false);
      await pingAll(s.wgo, ENGINE, 56);
      await pingAll(s.wgo, ENGINE, MTU - 28);
      const sealed = s.plane.shardStats().reduce((t, x) => t + x.egressPackets, 0);
      assert.ok(sealed >= 20, `the shards sealed ${sealed} replies`);
    });
  }

  it('carries bulk TCP both ways with TUN offloads (workers 2): TSO super-packets cut and sealed, GRO runs joined', async () => {
    s = await setup(2, true, true);
    await iperfServer(s, s.wgo, GO);
    // Floors far below what any build moves here (a few hundred Mbit/s): the test is that TCP gets through.
    for (const reverse of [false, true]) {
      const bytes = await iperfBytes(s.eng, GO, reverse);
      assert.ok(bytes > 4 << 20, `${reverse ? 'wireguard-go -> engine' : 'engine -> wireguard-go'}: ${bytes} bytes in 1 s`);
    }
    const stats = s.plane.shardStats();
    assert.ok(stats.reduce((t, x) => t + x.coalescedPackets, 0) > 0, 'the shards joined received TCP segments for the TUN');
  });
});
