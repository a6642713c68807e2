// The NAT namespace's nftables table. Packets from the tunnel to the gateway
// addresses stay with the namespace's own sockets (the DNS forwarder, ping);
// every other TCP and UDP packet from the tunnel is steered by tproxy to a
// transparent listener, which sees the original destination. Echo requests
// (and the later fragments of big ones, which carry no ICMP header) are marked
// for local delivery too, where the ping relay reads them (icmp-relay.ts).
// Mark 1 sends steered packets to routing table 100, where everything is local.
// Nothing is forwarded here: the namespace terminates every flow itself, and a
// packet the relays do not take (another protocol, another ICMP type) from one
// peer to another must not be routed back into the tunnel. Forwarding is
// switched off in the namespace too (namespace.ts), but a new namespace
// inherits IPv4 forwarding from the host's initial one (on on any Docker
// host), and its /proc/sys may be read-only: the forward chain is what holds.

export const TPROXY_MARK = 1;
export const TPROXY_TABLE = 100;
export const NFT_TABLE = 'wirecagesrv';

export interface NftRuleOptions {
  tunName: string;
  gateway4: string;
  gateway6: string;
  tcpPort: number;
  udpPort: number;
  /** Steer echo requests to the ping relay; only once the namespace's kernel answers no echo itself. */
  steerEcho?: boolean;
}

export function natRuleset(o: NftRuleOptions): string {
  const mark = `meta mark set ${TPROXY_MARK}`;
  const echo = o.steerEcho
    ? `
    icmp type echo-request ${mark} accept
    icmpv6 type echo-request ${mark} accept
    ip protocol icmp ip frag-off & 0x1fff != 0 ${mark} accept
    frag nexthdr ipv6-icmp frag frag-off != 0 ${mark} accept`
    : '';
  return `table inet ${NFT_TABLE} {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    iifname != "${o.tunName}" accept
    ip daddr ${o.gateway4} accept
    ip6 daddr { ${o.gateway6}, fe80::/10 } accept${echo}
    meta l4proto tcp socket transparent 1 ${mark} accept
    meta l4proto tcp tproxy to :${o.tcpPort} ${mark} accept
    meta l4proto udp tproxy to :${o.udpPort} ${mark} accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
  }
}
`;
}

/** `ip -batch` input for one family: marked packets are delivered locally. */
export function policyRouting(family: 4 | 6): string {
  const all = family === 4 ? '0.0.0.0/0' : '::/0';
  return `rule add fwmark ${TPROXY_MARK} lookup ${TPROXY_TABLE}\nroute add local ${all} dev lo table ${TPROXY_TABLE}\n`;
}
