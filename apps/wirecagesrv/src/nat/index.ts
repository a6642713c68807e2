// The NAT seam: `up` asks for a mode, and gets a Nat it closes at exit and
// asks whether it is ready (/readyz).
import { readlinkSync } from 'node:fs';
import { IFF_UP, Rtnl } from '@wirecage/netns';
import type { Device, Logger } from '@wirecage/wg-engine';
import type { Nat, NatStartOptions } from './types.js';
import { startKernelNat } from './kernel.js';
import { tool } from './kernel-host.js';
import { KERNEL_NFT_TABLE } from './kernel-rules.js';
import { startUserspaceNat } from './userspace.js';

export { EgressPolicy, parseAllowDest, type EgressPolicyOptions, type RefusalReason } from './policy.js';
export { FlowLimits, DEFAULT_MAX_FLOWS, DEFAULT_MAX_FLOWS_PER_PEER } from './limits.js';
export { type NatCounters } from './counters.js';
export { DnsForwarder, type DnsCounters, type DnsForwarderOptions } from './dns-forwarder.js';
export { parseDnsUpstream, formatDnsUpstream, hostDnsUpstreams, type DnsUpstream } from './dns-upstream.js';
export { UDP_IDLE_MS, DNS_IDLE_MS } from './udp-relay.js';
export { TCP_CONNECT_TIMEOUT_MS } from './tcp-relay.js';
export { KERNEL_NFT_TABLE } from './kernel-rules.js';
export { kernelNatRefusal } from './kernel-host.js';
export type { Nat, NatLiveOptions, NatMode, NatOptions, NatReconfigured, NatStartOptions } from './types.js';

/** A running NAT that says whether it still works. */
export interface ReadyNat extends Nat {
  /** Null while its namespace lives with its TUN open and up, its relays and DNS forwarder listen (and, for the kernel NAT, its nftables table is in place); else what is wrong. */
  ready(): Promise<string | null>;
}

export async function startNat(device: Device, o: NatStartOptions, log: Logger): Promise<ReadyNat> {
  const nat = o.mode === 'kernel' ? await startKernelNat(device, o, log) : await startUserspaceNat(device, o, log);
  return Object.assign(nat, { ready: () => natReady(nat) });
}

async function natReady(nat: Nat): Promise<string | null> {
  let ns;
  try {
    ns = readlinkSync(`/proc/self/fd/${nat.netnsFd}`);
  } catch (err) {
    return `the NAT namespace's fd is gone: ${(err as Error).message}`;
  }
  if (!ns.startsWith('net:')) return `the NAT namespace's fd ${nat.netnsFd} is ${ns}, not a network namespace`;
  if (nat.tun.closed) return `the NAT's TUN ${nat.tun.name} is closed`;
  const nl = Rtnl.open(nat.netnsFd);
  try {
    if ((nl.link(nat.tun.name).flags & IFF_UP) === 0) return `the NAT's TUN ${nat.tun.name} is down`;
  } catch (err) {
    return `the NAT's TUN ${nat.tun.name}: ${(err as Error).message}`;
  } finally {
    nl.close();
  }
  const relays = nat.relaysDown();
  if (relays) return `the NAT: ${relays}`;
  if (nat.mode === 'kernel' && (await tool('nft', ['list', 'table', 'inet', KERNEL_NFT_TABLE])).code !== 0)
    return "the kernel NAT's nftables table is missing";
  return null;
}
