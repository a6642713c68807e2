// The kernel NAT's nftables table, in the namespace the server runs in. The
// kernel forwards the peers' packets from the TUN and masquerades them behind
// the host's address; this table decides what may pass:
// - peers' new flows (forwarded, or to the host itself) pass the egress
//   policy, generated from EgressPolicy.prefixes() so both NATs refuse the
//   same destinations: TCP gets a reset, anything else is dropped;
// - the flow limits, with `ct count` per peer address and in total;
// - nothing from outside opens a flow into the tunnel (peers sit behind the
//   NAT, as in the userspace mode); port forwards are local sockets, whose
//   packets from the TUN are marked for local delivery (see FORWARD_MARK).
// Counters name what happened, read at shutdown for the log.
import { formatCidr, type Cidr } from '@wirecage/wg-engine';
import type { EgressPolicy } from './policy.js';

export const KERNEL_NFT_TABLE = 'wirecagesrv_nat';
/**
 * Packets from the TUN to a transparent socket (a port forward's connection
 * into a cage, bound to the remote client's address) carry this mark, and a
 * policy rule sends marked packets to routing table FORWARD_ROUTE_TABLE, where
 * every address is local: they reach the socket instead of being forwarded.
 */
export const FORWARD_MARK = 0x7763;
export const FORWARD_ROUTE_TABLE = 0x7763;

/** The named counters of the table, as the kernel NAT's NatCounters read them. */
export const KERNEL_COUNTERS = ['tcp_flows', 'udp_flows', 'tcp_refused', 'other_refused', 'tcp_limited', 'other_limited'] as const;
export type KernelCounter = (typeof KERNEL_COUNTERS)[number];

export interface KernelRuleOptions {
  tunName: string;
  /** Gateway addresses without prefix: the peers' packets to them stay with the host (DNS forwarder, ping). */
  gateway4: string;
  gateway6: string;
  /** The pools, masqueraded when they leave by any other interface. */
  pool4: string;
  pool6: string;
  policy: EgressPolicy;
  maxFlows: number;
  maxFlowsPerPeer: number;
  /** Stored in the table, read back by a later start when this one crashed (see kernel-host.ts). */
  comment: string;
}

const daddr = (c: Cidr) => `${c.family === 4 ? 'ip' : 'ip6'} daddr ${formatCidr(c)}`;

/** The egress chain: allowed prefixes return (to the next checks), refused ones jump to `refuse`. */
function egressRules(policy: EgressPolicy): string[] {
  const { allowed, refused } = policy.prefixes();
  return [
    ...allowed.map((c) => `${daddr(c)} return`),
    ...refused.map((r) => `${daddr(r.cidr)} jump refuse comment "${r.reason}"`),
    // An IPv4-mapped IPv6 destination is no route anywhere; the userspace NAT judges it by its IPv4 address.
    'ip6 daddr ::ffff:0.0.0.0/96 jump refuse comment "ipv4-mapped"',
  ];
}

export function kernelRuleset(o: KernelRuleOptions): string {
  const tun = JSON.stringify(o.tunName);
  const indent = (rules: string[]) => rules.map((r) => `    ${r}`).join('\n');
  return `table inet ${KERNEL_NFT_TABLE} {
  comment ${JSON.stringify(o.comment)}
  set peers4 { type ipv4_addr; size 65535; flags dynamic; }
  set peers6 { type ipv6_addr; size 65535; flags dynamic; }
  set everyone { type ifname; size 1; flags dynamic; }
${KERNEL_COUNTERS.map((c) => `  counter ${c} { }`).join('\n')}
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    iifname ${tun} meta l4proto { tcp, udp } socket transparent 1 meta mark set ${FORWARD_MARK} accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname != ${tun} accept
    ct state established,related accept
    ip daddr ${o.gateway4} accept
    ip6 daddr { ${o.gateway6}, fe80::/10 } accept
    jump peer_flow
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    oifname ${tun} drop
    iifname ${tun} jump peer_flow
  }
  chain peer_flow {
    jump egress
    ct state new add @everyone { iifname ct count over ${o.maxFlows} } jump limited
    ct state new add @peers4 { ip saddr ct count over ${o.maxFlowsPerPeer} } jump limited
    ct state new add @peers6 { ip6 saddr ct count over ${o.maxFlowsPerPeer} } jump limited
    meta l4proto tcp ct state new counter name tcp_flows
    meta l4proto udp ct state new counter name udp_flows
  }
  chain egress {
${indent(egressRules(o.policy))}
  }
  chain refuse {
    meta l4proto tcp counter name tcp_refused reject with tcp reset
    counter name other_refused drop
  }
  chain limited {
    meta l4proto tcp counter name tcp_limited reject with tcp reset
    counter name other_limited drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname != ${tun} ip saddr ${o.pool4} masquerade
    oifname != ${tun} ip6 saddr ${o.pool6} masquerade
  }
}
`;
}

/** `ip -batch` input for one family: the policy routing that delivers FORWARD_MARK packets locally. */
export function forwardRouting(family: 4 | 6): string {
  const all = family === 4 ? '0.0.0.0/0' : '::/0';
  return `rule add fwmark ${FORWARD_MARK} lookup ${FORWARD_ROUTE_TABLE}\nroute add local ${all} dev lo table ${FORWARD_ROUTE_TABLE}\n`;
}

/** Packet counts of the named counters, from `nft -j list counters table inet wirecagesrv_nat`. */
export function parseCounters(json: string): Partial<Record<KernelCounter, number>> {
  const out: Partial<Record<KernelCounter, number>> = {};
  const items = (JSON.parse(json) as { nftables?: { counter?: { name: string; table: string; packets: number } }[] }).nftables ?? [];
  for (const item of items) {
    const c = item.counter;
    if (c && c.table === KERNEL_NFT_TABLE && (KERNEL_COUNTERS as readonly string[]).includes(c.name)) out[c.name as KernelCounter] = c.packets;
  }
  return out;
}
