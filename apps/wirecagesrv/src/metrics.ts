// The server's own Prometheus series, next to the engine's (@wirecage/metrics):
// registered peers, listening forwards and what the NAT did. Read at scrape
// time from the counters the registry and the NAT keep anyway.
import { scrapedCounter, scrapedGauge, type Registry } from '@wirecage/metrics';
import type { ForwardManager } from './forwards/index.js';
import type { Nat } from './nat/index.js';
import type { Registry as PeerRegistry } from './registry/index.js';

export interface ServerMetricSources {
  registry: PeerRegistry;
  forwards: ForwardManager;
  nat: Nat | null;
}

export function registerServerMetrics(metrics: Registry, s: ServerMetricSources): void {
  const add = (m: Parameters<Registry['registerMetric']>[0]) => metrics.registerMetric(m);
  add(scrapedGauge({ name: 'wirecagesrv_peers_registered', help: 'Peers in the registry.', labelNames: [] }, (set) => set({}, s.registry.count())));
  add(scrapedGauge({ name: 'wirecagesrv_forwards_listening', help: 'Port forwards whose public port is listening.', labelNames: [] }, (set) => set({}, s.forwards.openCount)));
  const nat = s.nat;
  if (!nat) return;
  const c = nat.counters;
  add(scrapedGauge({ name: 'wirecagesrv_nat_active_flows', help: 'TCP connections, UDP flows and ping flows open through the NAT now.', labelNames: ['mode'] }, (set) => set({ mode: nat.mode }, nat.activeFlows())));
  add(
    scrapedCounter({ name: 'wirecagesrv_nat_flows_total', help: 'Flows the NAT relayed, by protocol.', labelNames: ['protocol'] }, (set) => {
      set({ protocol: 'tcp' }, c.tcpFlows);
      set({ protocol: 'udp' }, c.udpFlows);
      set({ protocol: 'icmp' }, c.icmpFlows);
    }),
  );
  add(
    scrapedCounter({ name: 'wirecagesrv_nat_refused_total', help: 'Flows refused, by protocol and by what refused them (the egress policy, or the flow limits).', labelNames: ['protocol', 'by'] }, (set) => {
      set({ protocol: 'tcp', by: 'policy' }, c.tcpRefusedByPolicy);
      set({ protocol: 'udp', by: 'policy' }, c.udpRefusedByPolicy);
      set({ protocol: 'icmp', by: 'policy' }, c.icmpRefusedByPolicy);
      set({ protocol: 'tcp', by: 'limit' }, c.tcpRefusedByLimit);
      set({ protocol: 'udp', by: 'limit' }, c.udpRefusedByLimit);
      set({ protocol: 'icmp', by: 'limit' }, c.icmpRefusedByLimit);
    }),
  );
  add(
    scrapedCounter({ name: 'wirecagesrv_nat_dropped_total', help: 'What the NAT dropped or failed: TCP connects that failed (the client got a reset), UDP datagrams, ping messages.', labelNames: ['what'] }, (set) => {
      set({ what: 'tcp_connect_failure' }, c.tcpConnectFailures);
      set({ what: 'udp_datagram' }, c.udpDropped);
      set({ what: 'icmp_message' }, c.icmpDropped);
    }),
  );
  add(
    scrapedCounter({ name: 'wirecagesrv_nat_icmp_errors_total', help: 'ICMP errors (unreachable, time exceeded, packet too big) about peers\' UDP datagrams and pings: passed on to the peer, or not (over the rate limit).', labelNames: ['outcome'] }, (set) => {
      set({ outcome: 'sent' }, c.icmpErrors);
      set({ outcome: 'limited' }, c.icmpErrorsLimited);
    }),
  );
}
