// The kernel NAT's nftables table, in the namespace the server runs in. The
// kernel forwards the peers' packets from the TUN and masquerades them behind
// the host's address; this table decides what may pass:
// - to the host itself, peers reach only the DNS forwarder (UDP and TCP 53)
//   and ping on the gateway addresses; anything else they send the host (any
//   other port, fe80::, the host's other addresses) is refused;
// - peers' new forwarded flows pass the egress policy, generated from
//   EgressPolicy.prefixes() so both NATs refuse the same destinations (the
//   host's own addresses in a chain of their own, rewritten when they
//   change): TCP gets a reset, anything else is dropped;
// - the flow limits, with `ct count` per peer address and in total;
// - the forward chain passes to and from the TUN only the peers' own flows
//   (and their replies); nothing from outside opens a flow into the tunnel
//   (peers sit behind the NAT, as in the userspace mode), and peers do not
//   reach each other through the host. Port forwards are local sockets, whose
//   packets from the TUN are marked for local delivery (see FORWARD_MARK);
// - forwarding is switched on host-wide for the TUN's sake: for a family whose
//   forwarding was off before, the host's other interfaces stay unforwarded
//   (dropped here), so the host does not turn into a router for them.
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
export const KERNEL_COUNTERS = [
  'tcp_flows',
  'udp_flows',
  'tcp_refused',
  'other_refused',
  'tcp_limited',
  'other_limited',
  'not_peer_flow',
  'host_forward',
] as const;
/** The chain holding the host's own addresses (and their translations), rewritten when they change. */
export const HOST_CHAIN = 'egress_host';
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
  /** The forwarding switches before this start: a family that was off stays off for everything but the TUN. */
  forwardedBefore: { v4: boolean; v6: boolean };
}

const daddr = (c: Cidr) => `${c.family === 4 ? 'ip' : 'ip6'} daddr ${formatCidr(c)}`;

/** The egress chain: allowed prefixes return (to the next checks), refused ones jump to `refuse`. */
function egressRules(policy: EgressPolicy): string[] {
  const { allowed, refused } = policy.prefixes();
  return [
    ...allowed.map((c) => `${daddr(c)} return`),
    ...refused.filter((r) => r.reason !== 'host').map((r) => `${daddr(r.cidr)} jump refuse comment "${r.reason}"`),
    `jump ${HOST_CHAIN}`,
    // An IPv4-mapped IPv6 destination is no route anywhere; the userspace NAT judges it by its IPv4 address.
    'ip6 daddr ::ffff:0.0.0.0/96 jump refuse comment "ipv4-mapped"',
  ];
}

/** The host chain's rules: the host's addresses the policy refuses, as they are now. */
function hostRules(policy: EgressPolicy): string[] {
  return policy
    .prefixes()
    .refused.filter((r) => r.reason === 'host')
    .map((r) => `${daddr(r.cidr)} jump refuse comment "host"`);
}

/** `nft -f` input that rewrites the host chain after the host's addresses changed (one transaction). */
export function hostChainUpdate(policy: EgressPolicy): string {
  const at = `inet ${KERNEL_NFT_TABLE} ${HOST_CHAIN}`;
  return [`flush chain ${at}`, ...hostRules(policy).map((r) => `add rule ${at} ${r}`)].join('\n') + '\n';
}

/**
 * `nft -f` input that rewrites the egress chain after a reload changed the policy: one transaction,
 * so no packet meets a half-written chain. The chain sees new flows only (peer_flow), so flows
 * already established carry on whatever the new policy says.
 */
export function egressChainUpdate(policy: EgressPolicy): string {
  const at = `inet ${KERNEL_NFT_TABLE} egress`;
  return [`flush chain ${at}`, ...egressRules(policy).map((r) => `add rule ${at} ${r}`)].join('\n') + '\n';
}

/** Drops, for each family whose forwarding was off, what the host would now forward between its other interfaces. */
function hostForwardRules(tun: string, before: { v4: boolean; v6: boolean }): string[] {
  const off = [before.v4 ? null : 'ipv4', before.v6 ? null : 'ipv6'].filter((f) => f !== null);
  return off.map(
    (f) => `meta nfproto ${f} iifname != ${tun} oifname != ${tun} counter name host_forward drop comment "forwarding was off before"`,
  );
}

/**
 * The whole table, as `nft -f` reads it and `nft list table` prints it back. Longer than a function
 * should be, on purpose: a ruleset is reviewed as one text, chain beside chain.
 */
// eslint-disable-next-line max-lines-per-function -- one nft ruleset, reviewed as one text (above)
export function kernelRuleset(o: KernelRuleOptions): string {
  const tun = JSON.stringify(o.tunName);
  const indent = (rules: string[]) => rules.map((r) => `    ${r}`).join('\n');
  const gateways = `ip daddr ${o.gateway4}`;
  const gateways6 = `ip6 daddr ${o.gateway6}`;
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
    # Replies to the host's own connections into the tunnel (port forwards), and errors about them.
    ct state established,related accept
    ${gateways} meta l4proto { tcp, udp } th dport 53 accept
    ${gateways6} meta l4proto { tcp, udp } th dport 53 accept
    ${gateways} icmp type echo-request accept
    ${gateways6} icmpv6 type echo-request accept
    jump refuse
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
${indent(hostForwardRules(tun, o.forwardedBefore))}
    iifname != ${tun} oifname != ${tun} accept comment "not the tunnel's: the host's other tables decide"
    iifname ${tun} oifname != ${tun} ct state established,related accept
    oifname ${tun} iifname != ${tun} ct state established,related ct status snat accept
    iifname ${tun} oifname != ${tun} ct state new goto peer_flow
    counter name not_peer_flow drop comment "to or from the tunnel, and not a peer's flow"
  }
  chain peer_flow {
    jump egress
    ct state new add @everyone { iifname ct count over ${o.maxFlows} } jump limited
    ct state new add @peers4 { ip saddr ct count over ${o.maxFlowsPerPeer} } jump limited
    ct state new add @peers6 { ip6 saddr ct count over ${o.maxFlowsPerPeer} } jump limited
    meta l4proto tcp ct state new counter name tcp_flows
    meta l4proto udp ct state new counter name udp_flows
    accept
  }
  chain egress {
${indent(egressRules(o.policy))}
  }
  chain ${HOST_CHAIN} {
${indent(hostRules(o.policy))}
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
    if (c && c.table === KERNEL_NFT_TABLE && (KERNEL_COUNTERS as readonly string[]).includes(c.name))
      out[c.name as KernelCounter] = c.packets;
  }
  return out;
}
