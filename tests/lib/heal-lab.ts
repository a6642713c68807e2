// The lab of a tunnel that moves (cage/heal.test.ts, cage/failover.test.ts):
// wirecage runs in `cli`; two wireguard-go servers A and B with the same keys,
// port and tunnel addressing sit behind two veths (one server moved to
// another address, or two nodes of one fleet), both knowing the cage's key;
// both route to `web`, which has WEB on its loopback. Without `nat`, web routes
// the tunnel's prefix back through A (a test that moves the server moves that
// route too, and the cage's TCP connections survive the move); with `nat`,
// each server masquerades what it forwards, as a fleet's nodes do, so web
// needs no route and a flow through a node that died ends with it. Names
// resolve in `cli` through lab-hosts.ts.
import type { CageKey } from './cage.js';
import { cageKey } from './cage.js';
import { labHosts, type LabHosts } from './lab-hosts.js';
import type { Lab, Netns } from './netns.js';
import { generateKeyPair, startWireguardGo, type WireguardGoPeer } from './wireguard-go.js';

export const HEAL_PORT = 51820;
export const HEAL_WEB = '10.99.0.1';
export const HEAL_CAGE_ADDRESS = '10.77.0.2';
/** The servers' own tunnel address: the cage's DNS in its config. */
export const HEAL_SERVER_ADDRESS = '10.77.0.1';

export interface HealServer {
  ns: Netns;
  wg: WireguardGoPeer;
  /** The server's address on its veth from cli: an Endpoint's host. */
  outer: string;
  /** The server's address on its veth to web, web's next hop back to the cage through it. */
  towardWeb: string;
}

export interface HealLab {
  cli: Netns;
  web: Netns;
  a: HealServer;
  b: HealServer;
  dir: string;
  /** The cage's key, a peer of both servers. */
  key: CageKey;
  hosts: LabHosts;
}

export async function healLab(lab: Lab, opts: { nat?: boolean } = {}): Promise<HealLab> {
  const cli = await lab.namespace('cli');
  // No IPv6 where stage 2 runs: link-local addresses settling on fresh veths would be host
  // network changes of their own, and the tests make theirs on purpose.
  await cli.sysctl('net.ipv6.conf.all.disable_ipv6', 1);
  await cli.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
  const web = await lab.namespace('web');
  const dir = await lab.tempDir();
  const key = await cageKey(dir, 'cage');
  const serverKeys = await generateKeyPair(dir, 'server');
  await web.addAddress('lo', `${HEAL_WEB}/32`);
  const servers: HealServer[] = [];
  for (const label of ['srva', 'srvb']) {
    const ns = await lab.namespace(label);
    const outer = await lab.veth(cli, ns, { v6: false });
    const back = await lab.veth(ns, web, { v6: false });
    await ns.sysctl('net.ipv4.ip_forward', 1);
    await ns.addRoute(`${HEAL_WEB}/32`, { via: back.b.v4! });
    if (opts.nat) await masquerade(ns, back.a.ifname);
    // Same keys, same port, same tunnel address: B is A at another address.
    const wg = await startWireguardGo(ns, { keys: serverKeys, listenPort: HEAL_PORT, addresses: [`${HEAL_SERVER_ADDRESS}/24`], mtu: 1420 });
    await wg.setPeer({ publicKey: key.publicKey, allowedIps: [`${HEAL_CAGE_ADDRESS}/32`] });
    servers.push({ ns, wg, outer: outer.b.v4!, towardWeb: back.a.v4! });
  }
  const [a, b] = servers as [HealServer, HealServer];
  if (!opts.nat) await web.addRoute('10.77.0.0/24', { via: a.towardWeb });
  return { cli, web, a, b, dir, key, hosts: labHosts(lab, cli) };
}

/** Source NAT of everything `ns` forwards out of `ifname` (the namespace goes with the lab, the table with it). */
async function masquerade(ns: Netns, ifname: string): Promise<void> {
  await ns.runOrThrow('nft', ['-f', '-'], {
    input: `table ip heal_nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname "${ifname}" masquerade\n }\n}\n`,
  });
}
