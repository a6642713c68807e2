// The kernel NAT (--nat kernel): no namespace of our own. The TUN with the
// gateway addresses lives in the namespace the server runs in, the kernel
// forwards the peers' packets and masquerades them (kernel-rules.ts), and
// everything changed here is put back at close: the table, the forward
// routing, and the forwarding switches as they were before.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Rtnl } from '@wirecage/netns';
import { Tun } from '@wirecage/tun';
import type { Device, Logger } from '@wirecage/wg-engine';
import { newCounters, type NatCounters } from './counters.js';
import { DnsForwarder } from './dns-forwarder.js';
import { hostDnsUpstreams } from './dns-upstream.js';
import {
  clearStaleKernelNat,
  deleteConntrackFrom,
  installForwardRouting,
  kernelNatRefusal,
  listCountersSync,
  readForwarding,
  removeForwardRouting,
  stateComment,
  toolOrThrow,
  writeForwarding,
  type Forwarding,
} from './kernel-host.js';
import { HostAddressWatcher } from './host-addresses.js';
import {
  KERNEL_NFT_TABLE,
  egressChainUpdate,
  hostChainUpdate,
  kernelRuleset,
  parseCounters,
  type KernelRuleOptions,
} from './kernel-rules.js';
import { NAT_TUN_NAME } from './namespace.js';
import { EgressPolicy } from './policy.js';
import type { Nat, NatLiveOptions, NatReconfigured, NatStartOptions } from './types.js';

/** Steps done so far, undone in reverse by close() or a failed start. */
interface Undo {
  hosts?: HostAddressWatcher;
  dns?: DnsForwarder;
  tun?: Tun;
  netnsFd?: number;
  table?: boolean;
  routing?: boolean;
  forwarding?: Forwarding;
}

async function undo(u: Undo, log: Logger): Promise<void> {
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      log.error(`kernel NAT: cannot ${what}: ${(err as Error).message}`);
    }
  };
  // Each step once, even if close() runs twice.
  const { hosts, dns, tun, netnsFd, table, routing, forwarding } = u;
  for (const k of Object.keys(u) as (keyof Undo)[]) delete u[k];
  hosts?.close();
  if (dns) {
    log.info(dns.summary());
    await attempt('stop the DNS forwarder', () => dns.close());
  }
  if (table)
    await attempt(`remove the nftables table inet ${KERNEL_NFT_TABLE}`, () =>
      toolOrThrow('nft', ['delete', 'table', 'inet', KERNEL_NFT_TABLE]),
    );
  if (routing) await attempt('remove the forward routing', () => removeForwardRouting());
  if (forwarding) await attempt('restore forwarding', () => writeForwarding(forwarding));
  tun?.close();
  if (netnsFd !== undefined) closeSync(netnsFd);
}

/** The table's counters as NatCounters, read (at most once a second) when something looks. */
function kernelCounters(): NatCounters {
  let at = 0;
  let last = newCounters();
  const read = (): NatCounters => {
    if (Date.now() - at < 1000) return last;
    const json = listCountersSync();
    if (json === null) return last;
    const c = parseCounters(json);
    at = Date.now();
    last = {
      ...newCounters(),
      // Packets that opened a flow (a retransmitted SYN counts again), and refused packets.
      tcpFlows: c.tcp_flows ?? 0,
      udpFlows: c.udp_flows ?? 0,
      tcpRefusedByPolicy: c.tcp_refused ?? 0,
      udpRefusedByPolicy: c.other_refused ?? 0,
      tcpRefusedByLimit: c.tcp_limited ?? 0,
      udpRefusedByLimit: c.other_limited ?? 0,
    };
    return last;
  };
  const counters = newCounters();
  for (const key of Object.keys(counters) as (keyof NatCounters)[]) {
    Object.defineProperty(counters, key, { enumerable: true, get: () => read()[key] });
  }
  return counters;
}

export async function startKernelNat(device: Device, o: NatStartOptions, log: Logger): Promise<Nat> {
  const refusal = kernelNatRefusal();
  if (refusal) throw new Error(refusal);
  const stale = await clearStaleKernelNat();
  if (stale) log.warn(stale);

  const u: Undo = {};
  try {
    const before = readForwarding();
    u.tun = openGatewayTun(o);
    const policy = new EgressPolicy({ allowLan: o.allowLan, allowDest: o.allowDest, serverPools: o.serverPools });
    const hosts = watchHostAddresses(policy, log);
    u.hosts = hosts.watcher;
    await toolOrThrow('nft', ['-f', '-'], kernelRuleset(ruleOptions(o, u.tun.name, policy, before)));
    u.table = true;
    await hosts.arm();
    u.routing = true;
    await installForwardRouting();
    u.forwarding = before;
    writeForwarding({ v4: '1', v6: before.v6 === null ? null : '1' });
    // Port forwards and the DNS forwarder open sockets "in the NAT namespace" by fd: here that is our own.
    u.netnsFd = openSync('/proc/self/ns/net', 'r');
    const gateways = [o.gateway4, o.gateway6].map((g) => g.split('/')[0]!);
    u.dns = await DnsForwarder.start({ netnsFd: null, addresses: gateways, upstreams: o.dnsUpstream ?? hostDnsUpstreams(), log });
    return { ...kernelNat(device, u, u.tun, u.netnsFd, log), reconfigure: kernelReconfigure(policy, o) };
  } catch (err) {
    await undo(u, log);
    throw new Error(`cannot set up the kernel NAT: ${(err as Error).message}`, { cause: err });
  }
}

/** The NAT's TUN in the server's own namespace, up, with the gateway addresses. */
function openGatewayTun(o: NatStartOptions): Tun {
  const tun = Tun.open({ name: NAT_TUN_NAME, mtu: o.mtu, offload: o.offload ?? false, queues: o.queues ?? 1 });
  const nl = Rtnl.open();
  try {
    nl.addAddress(tun.name, o.gateway4);
    nl.addAddress(tun.name, o.gateway6);
    nl.setUp(tun.name);
    return tun;
  } catch (err) {
    tun.close();
    throw err;
  } finally {
    nl.close();
  }
}

/**
 * Keeps the policy's host addresses current. The table is first written with the addresses as
 * they are then; once `arm()` has run (after the table exists) every change rewrites its host chain.
 */
function watchHostAddresses(policy: EgressPolicy, log: Logger): { watcher: HostAddressWatcher; arm(): Promise<void> } {
  let armed = false;
  let updating = Promise.resolve();
  const watcher = HostAddressWatcher.start((addresses) => {
    policy.setHostAddresses(addresses);
    if (!armed) return;
    updating = updating
      .then(() => toolOrThrow('nft', ['-f', '-'], hostChainUpdate(policy)))
      .then(() => log.debug(`kernel NAT: the host's addresses refused to peers are now ${addresses.join(', ')}`))
      .catch((err: Error) => log.error(`kernel NAT: cannot refuse the host's new addresses to peers: ${err.message}`));
  }, log);
  return {
    watcher,
    async arm() {
      armed = true;
      // An address that changed while the table was being written.
      await toolOrThrow('nft', ['-f', '-'], hostChainUpdate(policy));
    },
  };
}

function ruleOptions(o: NatStartOptions, tunName: string, policy: EgressPolicy, before: Forwarding): KernelRuleOptions {
  const [pool4, pool6] = o.serverPools as [string, string];
  return {
    tunName,
    gateway4: o.gateway4.split('/')[0]!,
    gateway6: o.gateway6.split('/')[0]!,
    pool4,
    pool6,
    policy,
    maxFlows: o.maxFlows,
    maxFlowsPerPeer: o.maxFlowsPerPeer,
    comment: stateComment(process.pid, before),
    forwardedBefore: { v4: before.v4 === '1', v6: before.v6 === '1' },
  };
}

/** A reload of the kernel NAT: the egress chain rewritten in one nft transaction; the flow limits stay. */
function kernelReconfigure(policy: EgressPolicy, start: NatLiveOptions): (n: NatLiveOptions) => Promise<NatReconfigured> {
  let current: NatLiveOptions = {
    allowLan: start.allowLan,
    allowDest: [...start.allowDest],
    maxFlows: start.maxFlows,
    maxFlowsPerPeer: start.maxFlowsPerPeer,
  };
  return async (n) => {
    const notes: string[] = [];
    // `ct count` lives in the set elements made at start, each with the limit of then; a new limit
    // would have to empty the sets, forgetting the flows counted so far.
    if (n.maxFlows !== current.maxFlows || n.maxFlowsPerPeer !== current.maxFlowsPerPeer) {
      notes.push('--max-flows and --max-flows-per-peer of the kernel NAT are counted in nftables sets made at start: they need a restart');
    }
    const was = { allowLan: current.allowLan, allowDest: current.allowDest };
    policy.reconfigure(n);
    try {
      await toolOrThrow('nft', ['-f', '-'], egressChainUpdate(policy));
    } catch (err) {
      policy.reconfigure(was);
      throw new Error(`cannot rewrite the kernel NAT's egress rules: ${(err as Error).message}`, { cause: err });
    }
    current = { ...current, allowLan: n.allowLan, allowDest: [...n.allowDest] };
    return { applied: { ...current }, notes };
  };
}

function kernelNat(device: Device, u: Undo, tun: Tun, netnsFd: number, log: Logger): Omit<Nat, 'reconfigure'> {
  return {
    mode: 'kernel',
    netnsFd,
    tun,
    counters: kernelCounters(),
    // The kernel tracks the flows: every connection conntrack holds in this namespace, peers' or not.
    activeFlows: () => conntrackCount(),
    // The kernel relays; the DNS forwarder on the gateways is ours.
    relaysDown: () => (u.dns ? u.dns.down() : 'its DNS forwarder is not running'),
    async closeFlowsFrom(addresses) {
      let n = 0;
      for (const a of addresses) n += await deleteConntrackFrom(a);
      return n;
    },
    async close() {
      device.io.writeTun = () => {};
      await undo(u, log);
    },
  };
}

function conntrackCount(): number {
  try {
    return Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8').trim());
  } catch {
    return 0;
  }
}
