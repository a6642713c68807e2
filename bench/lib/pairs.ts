// The three pairs, each in a lab of its own: a left and a right network
// namespace joined by a veth (198.18.k.0/24, the lab default), and a tunnel
// between them on 10.77.<n>.0/24 (left .1, right .2). The left side runs
// the iperf3 client and ping; the right side runs `iperf3 -s`.
//   wg-wg      wireguard-go <-> wireguard-go        (the anchor)
//   cage-wg    wirecage cage <-> wireguard-go
//   cage-cage  wirecage cage <-> wirecage cage whose command is `iperf3 -s`
//   eng-wg     wg-engine without the cage (engine-peer.ts) <-> wireguard-go
// eng-wg wires the engine by the same attachDevice as a cage, with no cage
// around it: what the data plane costs apart from the cage.
import type { Lab, Netns } from '@wirecage/tests/lib/netns.js';
import { waitFor } from '@wirecage/tests/lib/wait.js';
import { cageKey, writeWgQuick } from '@wirecage/tests/lib/cage.js';
import { startWireguardGo } from '@wirecage/tests/lib/wireguard-go.js';
import { startCage, startEnginePeer, wireguardGoEndpoint, type Endpoint } from './endpoint.js';
import type { PairName } from './options.js';

export const PAIR_TITLES: Record<PairName, string> = {
  'wg-wg': 'wireguard-go ↔ wireguard-go',
  'cage-wg': 'cage ↔ wireguard-go',
  'cage-cage': 'cage ↔ cage',
  'eng-wg': 'engine ↔ wireguard-go',
};

export interface Pair {
  name: PairName;
  left: Endpoint;
  right: Endpoint;
  /** Runs a command in the left namespace, outside any tunnel: for the bare veth's round trip. */
  outerExec: Netns['run'];
  /** The right namespace's veth address. */
  outerTarget: string;
}

const MTU = 1420;
const CAGE_PORT = 51820;
const TUNNEL_NET: Record<PairName, number> = { 'wg-wg': 1, 'cage-wg': 2, 'cage-cage': 3, 'eng-wg': 4 };

export async function buildPair(lab: Lab, name: PairName, cageFlags: string[], workers = 2): Promise<Pair> {
  const left = await lab.namespace('left');
  const right = await lab.namespace('right');
  const veth = await lab.veth(left, right, { v6: false });
  const outerL = veth.a.v4!;
  const outerR = veth.b.v4!;
  const net = `10.77.${TUNNEL_NET[name]}`;
  const [addrL, addrR] = [`${net}.1`, `${net}.2`];
  const dir = await lab.tempDir();
  // Cages insist on a DNS server reachable through the tunnel; nothing here resolves names, so the peer's address does.
  let pair: Pair;

  if (name === 'wg-wg') {
    const wgL = await startWireguardGo(left, { addresses: [`${addrL}/24`], mtu: MTU });
    const wgR = await startWireguardGo(right, { addresses: [`${addrR}/24`], mtu: MTU });
    await wgL.setPeer({ publicKey: wgR.publicKey, endpoint: wgR.endpoint(outerR), allowedIps: [`${addrR}/32`] });
    await wgR.setPeer({ publicKey: wgL.publicKey, endpoint: wgL.endpoint(outerL), allowedIps: [`${addrL}/32`] });
    right.spawn('iperf3', ['-s']);
    pair = {
      name,
      left: wireguardGoEndpoint(wgL, addrL),
      right: wireguardGoEndpoint(wgR, addrR),
      outerExec: left.run.bind(left),
      outerTarget: outerR,
    };
  } else if (name === 'cage-wg') {
    const wgR = await startWireguardGo(right, { addresses: [`${addrR}/24`], mtu: MTU });
    const key = await cageKey(dir, 'left');
    await wgR.setPeer({ publicKey: key.publicKey, allowedIps: [`${addrL}/32`] });
    right.spawn('iperf3', ['-s']);
    const config = await writeWgQuick(dir, 'left.conf', { PrivateKey: key.privateKey, Address: `${addrL}/32`, DNS: addrR, MTU }, [
      { PublicKey: wgR.publicKey, Endpoint: wgR.endpoint(outerR), AllowedIPs: `${net}.0/24` },
    ]);
    const cage = startCage({ ns: left, config, address: addrL, command: ['sleep', 'infinity'], flags: cageFlags });
    pair = { name, left: await cage.ready(), right: wireguardGoEndpoint(wgR, addrR), outerExec: left.run.bind(left), outerTarget: outerR };
  } else if (name === 'eng-wg') {
    const wgR = await startWireguardGo(right, { addresses: [`${addrR}/24`], mtu: MTU });
    const key = await cageKey(dir, 'left');
    await wgR.setPeer({ publicKey: key.publicKey, allowedIps: [`${addrL}/32`] });
    right.spawn('iperf3', ['-s']);
    const engine = await startEnginePeer(left, dir, addrL, {
      privateKey: key.privateKey,
      peerPublicKey: wgR.publicKey,
      peerEndpoint: wgR.endpoint(outerR),
      allowedIps: [`${net}.0/24`],
      address: `${addrL}/24`,
      mtu: MTU,
      workers,
      offload: true,
      ifname: lab.uniqueIfname('eng'),
    });
    pair = { name, left: engine, right: wireguardGoEndpoint(wgR, addrR), outerExec: left.run.bind(left), outerTarget: outerR };
  } else {
    const kL = await cageKey(dir, 'left');
    const kR = await cageKey(dir, 'right');
    // Both know the other's endpoint: a cage needs one to start, and whichever initiates first wins.
    const confR = await writeWgQuick(
      dir,
      'right.conf',
      { PrivateKey: kR.privateKey, Address: `${addrR}/32`, DNS: addrL, ListenPort: CAGE_PORT, MTU },
      [{ PublicKey: kL.publicKey, Endpoint: `${outerL}:${CAGE_PORT}`, AllowedIPs: `${addrL}/32` }],
    );
    const confL = await writeWgQuick(
      dir,
      'left.conf',
      { PrivateKey: kL.privateKey, Address: `${addrL}/32`, DNS: addrR, ListenPort: CAGE_PORT, MTU },
      [{ PublicKey: kR.publicKey, Endpoint: `${outerR}:${CAGE_PORT}`, AllowedIPs: `${net}.0/24` }],
    );
    const cageR = startCage({ ns: right, config: confR, address: addrR, command: ['iperf3', '-s'], flags: cageFlags });
    const cageL = startCage({ ns: left, config: confL, address: addrL, command: ['sleep', 'infinity'], flags: cageFlags });
    const [l, r] = await Promise.all([cageL.ready(), cageR.ready()]);
    pair = { name, left: l, right: r, outerExec: left.run.bind(left), outerTarget: outerR };
  }

  await waitFor(async () => (await pair.right.exec('ss', ['-Hltn', 'sport = :5201'])).stdout.trim() !== '', {
    what: `iperf3 -s to listen on the right side of ${name}`,
    timeoutMs: 10_000,
  });
  // The first packet may wait for a handshake: get it done before anything is timed.
  await waitFor(async () => (await pair.left.exec('ping', ['-n', '-c', '1', '-W', '1', pair.right.address])).code === 0, {
    what: `a ping through the ${name} tunnel from ${pair.left.address} to ${pair.right.address}`,
    timeoutMs: 15_000,
  });
  return pair;
}
