// The NAT seam: `up` asks for a mode, and gets a Nat it closes at exit.
import type { Device, Logger } from '@wirecage/wg-engine';
import type { Nat, NatStartOptions } from './types.js';
import { startKernelNat } from './kernel.js';
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
export type { Nat, NatMode, NatOptions, NatStartOptions } from './types.js';

export async function startNat(device: Device, o: NatStartOptions, log: Logger): Promise<Nat> {
  if (o.mode === 'kernel') return startKernelNat(device, o, log);
  return startUserspaceNat(device, o, log);
}
