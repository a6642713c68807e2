// The server's own Prometheus series, next to the engine's (@wirecage/metrics):
// registered peers and their leases, listening forwards, API requests, what
// the NAT did, and the process defaults (fds: each NAT flow holds two). Read at
// scrape time from the counters the registry, the API and the NAT keep anyway.
// Names, help and labels are declared in @wirecage/metrics (definitions.ts).
import {
  processMetrics,
  registerScrapedHistogram,
  scrapedCounter,
  scrapedGauge,
  SRV_API_REQUEST_DURATION,
  SRV_API_REQUESTS,
  SRV_FORWARDS_LISTENING,
  SRV_NAT_ACTIVE_FLOWS,
  SRV_NAT_DROPPED,
  SRV_NAT_FLOWS,
  SRV_NAT_ICMP_ERRORS,
  SRV_NAT_REFUSED,
  SRV_PEERS_EXPIRING,
  SRV_PEERS_MAX,
  SRV_PEERS_REGISTERED,
  SRV_FLEET_NODES,
  SRV_FLEET_SESSIONS,
  SRV_NODE_INFO,
  type Fill,
  type MetricDefinition,
  type Registry,
} from '@wirecage/metrics';
import { apiRequestStats, type RequestStats } from './api/request-stats.js';
import { LIVE_WITHIN_MS, type NodeInfo } from './fleet/heartbeat.js';
import { fleetNodes } from './fleet/nodes.js';
import type { ForwardManager } from './forwards/index.js';
import type { Nat } from './nat/index.js';
import type { Registry as PeerRegistry } from './registry/index.js';

export interface ServerMetricSources {
  registry: PeerRegistry;
  /** This server, as the fleet gauges show it. */
  node: NodeInfo;
  forwards: ForwardManager;
  nat: Nat | null;
  /** The API's request counts; default the process's own (what createApiHandler counts into by default). */
  requests?: RequestStats;
}

/** The lease window of wirecagesrv_peers_expiring: a day's notice before peers drop off. */
export const EXPIRING_WITHIN_S = 86_400;

export function registerServerMetrics(metrics: Registry, s: ServerMetricSources): void {
  const gauge = (d: MetricDefinition, fill: Fill) =>
    metrics.registerMetric(scrapedGauge({ name: d.name, help: d.help, labelNames: [...d.labels] }, fill));
  const counter = (d: MetricDefinition, fill: Fill) =>
    metrics.registerMetric(scrapedCounter({ name: d.name, help: d.help, labelNames: [...d.labels] }, fill));
  processMetrics(metrics);

  gauge(SRV_PEERS_REGISTERED, async (set) => set({}, await s.registry.count()));
  gauge(SRV_PEERS_MAX, (set) => set({}, s.registry.maxPeers));
  // Leases already run out but not yet swept count too: they are about to go.
  gauge(SRV_PEERS_EXPIRING, async (set) =>
    set({ within: String(EXPIRING_WITHIN_S) }, (await s.registry.expired(Date.now() + EXPIRING_WITHIN_S * 1000)).length),
  );
  gauge(SRV_FORWARDS_LISTENING, (set) => set({}, s.forwards.openCount));
  fleetGauges(gauge, s.registry, s.node);

  const requests = s.requests ?? apiRequestStats;
  counter(SRV_API_REQUESTS, (set) => {
    for (const r of requests.entries()) set({ route: r.route, status: r.status }, r.count);
  });
  registerScrapedHistogram(
    metrics,
    { name: SRV_API_REQUEST_DURATION.name, help: SRV_API_REQUEST_DURATION.help, keyLabel: 'route' },
    requests.durations,
  );

  const nat = s.nat;
  if (!nat) return;
  const c = nat.counters;
  gauge(SRV_NAT_ACTIVE_FLOWS, (set) => set({ mode: nat.mode }, nat.activeFlows()));
  counter(SRV_NAT_FLOWS, (set) => {
    set({ protocol: 'tcp' }, c.tcpFlows);
    set({ protocol: 'udp' }, c.udpFlows);
    set({ protocol: 'icmp' }, c.icmpFlows);
  });
  counter(SRV_NAT_REFUSED, (set) => {
    set({ protocol: 'tcp', by: 'policy' }, c.tcpRefusedByPolicy);
    set({ protocol: 'udp', by: 'policy' }, c.udpRefusedByPolicy);
    set({ protocol: 'icmp', by: 'policy' }, c.icmpRefusedByPolicy);
    set({ protocol: 'tcp', by: 'limit' }, c.tcpRefusedByLimit);
    set({ protocol: 'udp', by: 'limit' }, c.udpRefusedByLimit);
    set({ protocol: 'icmp', by: 'limit' }, c.icmpRefusedByLimit);
  });
  counter(SRV_NAT_DROPPED, (set) => {
    set({ what: 'tcp_connect_failure' }, c.tcpConnectFailures);
    set({ what: 'udp_datagram' }, c.udpDropped);
    set({ what: 'icmp_message' }, c.icmpDropped);
  });
  counter(SRV_NAT_ICMP_ERRORS, (set) => {
    set({ outcome: 'sent' }, c.icmpErrors);
    set({ outcome: 'limited' }, c.icmpErrorsLimited);
  });
}

/** This node's name, and the fleet as the registry's heartbeats show it (one server: itself). */
function fleetGauges(gauge: (d: MetricDefinition, fill: Fill) => void, registry: PeerRegistry, self: NodeInfo): void {
  gauge(SRV_NODE_INFO, (set) => set({ node: registry.node }, 1));
  const live = () => fleetNodes(registry, self, LIVE_WITHIN_MS);
  gauge(SRV_FLEET_NODES, async (set) => set({}, (await live()).length));
  gauge(SRV_FLEET_SESSIONS, async (set) => {
    for (const n of await live()) set({ node: n.name }, n.sessions);
  });
}
