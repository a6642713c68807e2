// What the NAT did, as plain integers: read by logs and tests now, and by a
// metrics collector at scrape time (no message per flow).

export interface NatCounters {
  /** Flows relayed since start. */
  tcpFlows: number;
  udpFlows: number;
  /** Flows the egress policy refused (TCP reset, UDP datagram dropped). */
  tcpRefusedByPolicy: number;
  udpRefusedByPolicy: number;
  /** Flows refused because --max-flows or --max-flows-per-peer was reached. */
  tcpRefusedByLimit: number;
  udpRefusedByLimit: number;
  /** Host-side connections that failed (refused, unreachable, timed out): the client got a reset. */
  tcpConnectFailures: number;
  /** UDP datagrams dropped: no original destination, truncated, the host socket's buffer full, or no route to the destination. */
  udpDropped: number;
  /** UDP flows closed after their idle timeout. */
  udpExpired: number;
  /** Ping: flows (peer, destination, identifier) opened, echo requests sent out, replies relayed back. */
  icmpFlows: number;
  icmpEchoRequests: number;
  icmpEchoReplies: number;
  icmpRefusedByPolicy: number;
  icmpRefusedByLimit: number;
  /** Malformed requests, pings the host does not allow (ping_group_range), failed sends, replies nobody asked for. */
  icmpDropped: number;
  /** ICMP errors passed on to peers about their UDP datagrams and pings (unreachable, time exceeded, packet too big). */
  icmpErrors: number;
  /** ICMP errors not passed on: over the rate limit (1000 a second, bursts of 50). */
  icmpErrorsLimited: number;
}

export function newCounters(): NatCounters {
  return {
    tcpFlows: 0,
    udpFlows: 0,
    tcpRefusedByPolicy: 0,
    udpRefusedByPolicy: 0,
    tcpRefusedByLimit: 0,
    udpRefusedByLimit: 0,
    tcpConnectFailures: 0,
    udpDropped: 0,
    udpExpired: 0,
    icmpFlows: 0,
    icmpEchoRequests: 0,
    icmpEchoReplies: 0,
    icmpRefusedByPolicy: 0,
    icmpRefusedByLimit: 0,
    icmpDropped: 0,
    icmpErrors: 0,
    icmpErrorsLimited: 0,
  };
}
