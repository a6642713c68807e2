// Engine metrics in a prom-client registry. Nothing is counted here: every
// value is read from the engine's own counters when the registry is scraped
// (collect callbacks), so the packet paths do no metrics work at all.
//
// Several engines may share one registry (a server with more than one
// device): the metric objects are made once per registry and each scrape
// walks every engine registered in it, told apart by their labels.
import { Counter, Gauge, Registry } from 'prom-client';
import { DROP_REASONS, type DropReason } from '@wirecage/wg-engine/stats';
import * as defs from './definitions.js';

/** What the metrics read of a peer; a wg-engine Peer is one. */
export interface PeerSource {
  readonly publicKey: Uint8Array;
  readonly rxBytes: number;
  readonly txBytes: number;
  /** Wall-clock milliseconds of the last handshake, 0 when none. */
  readonly lastHandshakeWallMs: number;
  readonly endpoint: { toString(): string } | null;
}

/** A prefix as wg-engine's AllowedIps lists it: 4 or 16 address bytes. */
export interface CidrSource {
  readonly family: 4 | 6;
  readonly address: Uint8Array;
  readonly prefix: number;
}

/** What the metrics read of an engine; a wg-engine Device is one. */
export interface EngineSource {
  /** The device's own key, for wireguard_device_info; null before it has one. */
  readonly publicKey?: Uint8Array | null;
  /** The peers' prefixes, for wireguard_peer_allowed_ips_info. */
  readonly allowedIps?: { entriesFor(peer: PeerSource): readonly CidrSource[] };
  peers(): Iterable<PeerSource>;
  readonly peerCount: number;
  readonly drops: { get(reason: DropReason): number };
  readonly keypairs: { readonly used: number };
  readonly underLoad: boolean;
}

/** What the metrics read of a sharded data plane; a wg-engine DataPlane is one. */
export interface PlaneSource {
  readonly workers: number;
  /** Brings peer byte counters up to date with what the shards counted. */
  syncCounters(): void;
  shardStats(): {
    shard: number;
    egressPackets: number;
    ingressPackets: number;
    coalescedPackets: number;
    restarts: number;
    drops: { get(reason: DropReason): number };
  }[];
  ringStats(): Record<'egress' | 'ingress', { produced: number; emitted: number; dropped: number; dropsFull: number; emitErrors: number }>;
}

export type Labels = Record<string, string>;

export interface EngineMetricsOptions {
  /** Where the metrics go; default a new registry (see EngineMetrics.registry). */
  registry?: Registry;
  /**
   * Constant labels on every series of this engine. `device` names the
   * engine (default "wirecage", the CLI's default tunnel name); add others
   * (say `node`) as you like. Every engine in one registry has the same
   * label names and a different set of values.
   */
  labels?: Labels;
  /** The engine's sharded data plane, when it has one: per-shard and per-ring series, shard drops in wirecage_drops_total. */
  plane?: PlaneSource;
}

export interface EngineMetrics {
  readonly registry: Registry;
  readonly labels: Readonly<Labels>;
  /** Stops reporting this engine: its series disappear from the next scrape. Idempotent. */
  remove(): void;
}

export const DEFAULT_DEVICE = 'wirecage';

interface Member {
  source: EngineSource;
  labels: Labels;
  plane?: PlaneSource;
}

class EngineCollector {
  readonly members = new Map<string, Member>();
  private readonly metricNames: string[] = [];

  constructor(
    private readonly registry: Registry,
    readonly labelNames: readonly string[],
  ) {
    const extra = [...labelNames];
    // Registration order is the order of a scrape's output.
    this.wireguardSeries(extra);
    this.engineSeries(extra);
    this.planeSeries(extra);
  }

  /** The wireguard_* series, named as mdlayher/wireguard_exporter names them (definitions.ts). */
  private wireguardSeries(extra: string[]): void {
    this.counter(defs.PEER_RECEIVE_BYTES, extra, (set) => this.eachPeer((l, p) => set(l, p.rxBytes)));
    this.counter(defs.PEER_TRANSMIT_BYTES, extra, (set) => this.eachPeer((l, p) => set(l, p.txBytes)));
    this.gauge(defs.PEER_LAST_HANDSHAKE, extra, (set) => this.eachPeer((l, p) => set(l, p.lastHandshakeWallMs / 1000)));
    this.gauge(defs.DEVICE_INFO, extra, (set) =>
      this.eachEngine((l, e) => set({ ...l, public_key: e.publicKey ? Buffer.from(e.publicKey).toString('base64') : '' }, 1)),
    );
    this.gauge(defs.PEER_INFO, extra, (set) =>
      this.eachPeer((l, p) => set({ ...l, endpoint: p.endpoint ? p.endpoint.toString() : '', name: '' }, 1)),
    );
    this.gauge(defs.PEER_ALLOWED_IPS_INFO, extra, (set) =>
      this.eachPeer((l, p, e) => {
        for (const c of e.allowedIps?.entriesFor(p) ?? []) {
          set({ ...l, allowed_ips: `${formatAddress(c.address)}/${c.prefix}`, family: c.family === 4 ? 'IPv4' : 'IPv6' }, 1);
        }
      }),
    );
    this.gauge(defs.PEERS, extra, (set) => this.eachEngine((l, e) => set(l, e.peerCount)));
  }

  /** The engine's own health: drops (the plane's shards' included), keypairs, load. */
  private engineSeries(extra: string[]): void {
    this.counter(defs.DROPS, extra, (set) =>
      this.eachMember((l, m) => {
        const shards = m.plane?.shardStats() ?? [];
        for (const reason of DROP_REASONS) {
          set(
            { ...l, reason },
            shards.reduce((t, s) => t + s.drops.get(reason), m.source.drops.get(reason)),
          );
        }
      }),
    );
    this.gauge(defs.KEYPAIRS_IN_USE, extra, (set) => this.eachEngine((l, e) => set(l, e.keypairs.used)));
    this.gauge(defs.UNDER_LOAD, extra, (set) => this.eachEngine((l, e) => set(l, e.underLoad ? 1 : 0)));
  }

  /** The sharded data plane: per shard and per ring; zero shards and no series for an engine without one. */
  private planeSeries(extra: string[]): void {
    this.gauge(defs.SHARDS, extra, (set) => this.eachMember((l, m) => set(l, m.plane?.workers ?? 0)));
    this.counter(defs.SHARD_PACKETS, extra, (set) =>
      this.eachShard((l, s) => {
        set({ ...l, direction: 'egress' }, s.egressPackets);
        set({ ...l, direction: 'ingress' }, s.ingressPackets);
      }),
    );
    this.counter(defs.SHARD_DROPS, extra, (set) =>
      this.eachShard((l, s) => {
        for (const reason of DROP_REASONS) {
          const v = s.drops.get(reason);
          if (v > 0) set({ ...l, reason }, v);
        }
      }),
    );
    this.counter(defs.SHARD_RESTARTS, extra, (set) => this.eachShard((l, s) => set(l, s.restarts)));
    this.counter(defs.SHARD_COALESCED, extra, (set) => this.eachShard((l, s) => set(l, s.coalescedPackets)));
    this.counter(defs.RING_PACKETS, extra, (set) =>
      this.eachMember((l, m) => {
        if (!m.plane) return;
        for (const [ring, r] of Object.entries(m.plane.ringStats())) {
          set({ ...l, ring, outcome: 'produced' }, r.produced);
          set({ ...l, ring, outcome: 'emitted' }, r.emitted);
          set({ ...l, ring, outcome: 'dropped' }, r.dropped);
          set({ ...l, ring, outcome: 'full' }, r.dropsFull);
          set({ ...l, ring, outcome: 'emit_error' }, r.emitErrors);
        }
      }),
    );
  }

  private eachMember(fn: (labels: Labels, member: Member) => void): void {
    for (const m of this.members.values()) fn(m.labels, m);
  }

  private eachShard(fn: (labels: Labels, shard: ReturnType<PlaneSource['shardStats']>[number]) => void): void {
    for (const m of this.members.values()) {
      for (const s of m.plane?.shardStats() ?? []) fn({ ...m.labels, shard: String(s.shard) }, s);
    }
  }

  /** Takes the metrics out of the registry (the last engine left it). */
  unregister(): void {
    for (const name of this.metricNames) this.registry.removeSingleMetric(name);
  }

  private eachEngine(fn: (labels: Labels, engine: EngineSource) => void): void {
    for (const m of this.members.values()) fn(m.labels, m.source);
  }

  private eachPeer(fn: (labels: Labels, peer: PeerSource, engine: EngineSource) => void): void {
    for (const m of this.members.values()) {
      m.plane?.syncCounters();
      for (const p of m.source.peers()) fn({ ...m.labels, public_key: Buffer.from(p.publicKey).toString('base64') }, p, m.source);
    }
  }

  private counter(def: defs.MetricDefinition, extra: string[], fill: (set: (l: Labels, v: number) => void) => void): void {
    this.register(def.name, scrapedCounter({ name: def.name, help: def.help, labelNames: [...extra, ...def.labels] }, fill));
  }

  private gauge(def: defs.MetricDefinition, extra: string[], fill: (set: (l: Labels, v: number) => void) => void): void {
    this.register(def.name, scrapedGauge({ name: def.name, help: def.help, labelNames: [...extra, ...def.labels] }, fill));
  }

  private register(name: string, metric: Counter<string> | Gauge<string>): void {
    if (this.registry.getSingleMetric(name)) {
      this.unregister();
      throw new Error(`the registry already holds a metric named ${name} that @wirecage/metrics did not make; use another registry`);
    }
    this.registry.registerMetric(metric);
    this.metricNames.push(name);
  }
}

/** A metric read at scrape time: fill() calls set(labels, value) for each series. */
export interface ScrapedMetricOptions {
  name: string;
  help: string;
  labelNames: string[];
}

/** Sets the metric's values at scrape time; may be asynchronous (prom-client awaits collect). */
export type Fill = (set: (labels: Labels, value: number) => void) => void | Promise<void>;

/**
 * A counter whose value is a running total kept elsewhere (an engine's, a
 * server's): at each scrape it is reset and set to that total, so the code
 * that counts does no metrics work. Not registered; pass it to registry.registerMetric.
 */
export function scrapedCounter(o: ScrapedMetricOptions, fill: Fill): Counter<string> {
  const metric: Counter<string> = new Counter({
    ...o,
    registers: [],
    collect: async () => {
      metric.reset();
      await fill((l, v) => metric.inc(l, v));
    },
  });
  return metric;
}

/** A gauge read at scrape time, as scrapedCounter. */
export function scrapedGauge(o: ScrapedMetricOptions, fill: Fill): Gauge<string> {
  const metric: Gauge<string> = new Gauge({
    ...o,
    registers: [],
    collect: async () => {
      metric.reset();
      await fill((l, v) => metric.set(l, v));
    },
  });
  return metric;
}

const collectors = new WeakMap<Registry, EngineCollector>();

const RESERVED = new Set(defs.METRIC_DEFINITIONS.flatMap((d) => d.labels));

/** Reports a device's counters in a prom-client registry, read at scrape time. */
export function engineMetrics(engine: EngineSource, opts: EngineMetricsOptions = {}): EngineMetrics {
  const registry = opts.registry ?? new Registry();
  const labels = deviceLabels(opts.labels);
  for (const name of Object.keys(labels)) {
    if (RESERVED.has(name)) throw new Error(`label "${name}" is set by the metrics themselves; pick another name`);
  }
  const names = Object.keys(labels).sort();

  let collector = collectors.get(registry);
  if (collector && !sameNames(collector.labelNames, names)) {
    throw new Error(
      `engines in one registry need the same label names: this registry uses {${collector.labelNames.join(', ')}}, got {${names.join(', ')}}`,
    );
  }
  const key = JSON.stringify(names.map((n) => labels[n]));
  if (collector?.members.has(key)) {
    const shown = names.map((n) => `${n}="${labels[n]}"`).join(', ');
    throw new Error(`an engine with labels {${shown}} is already reported in this registry; give each engine its own device label`);
  }
  if (!collector) {
    collector = new EngineCollector(registry, names);
    collectors.set(registry, collector);
  }
  const member: Member = { source: engine, labels, plane: opts.plane };
  collector.members.set(key, member);

  const owner = collector;
  return {
    registry,
    labels,
    remove() {
      if (owner.members.get(key) !== member) return;
      owner.members.delete(key);
      if (owner.members.size === 0 && collectors.get(registry) === owner) {
        owner.unregister();
        collectors.delete(registry);
      }
    },
  };
}

function deviceLabels(given: Labels = {}): Labels {
  return { [defs.DEVICE_LABEL]: DEFAULT_DEVICE, ...given };
}

/** inet_ntop's text for 4 or 16 bytes (the URL parser writes IPv6 in RFC 5952 form). */
function formatAddress(a: Uint8Array): string {
  if (a.length === 4) return a.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[i]! << 8) | a[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
