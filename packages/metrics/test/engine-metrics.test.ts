import assert from 'node:assert/strict';
import { DROP_REASONS, formatCidr, keyToBase64, parseCidr, type Device } from '@wirecage/wg-engine';
import { Registry } from 'prom-client';
import { METRIC_DEFINITIONS, PEER_INFO, RING_PACKETS, MetricsServer, engineMetrics, type EngineMetrics } from '../src/index.js';
import { Pair } from './fixtures/pair.js';
import { parseExposition, select, value, type Exposition } from './fixtures/exposition.js';

const key = (d: Device) => keyToBase64(d.publicKey!);

describe('engine metrics scraped over HTTP', () => {
  let pair: Pair;
  let registry: Registry;
  let server: MetricsServer;
  let handles: EngineMetrics[];

  beforeEach(async () => {
    pair = new Pair();
    registry = new Registry();
    handles = [
      engineMetrics(pair.a.device, { registry, labels: { device: 'wga' } }),
      engineMetrics(pair.b.device, { registry, labels: { device: 'wgb' } }),
    ];
    server = await MetricsServer.listen('127.0.0.1:0', registry);
  });

  afterEach(async () => {
    await server.close();
    pair.close();
  });

  async function scrape(): Promise<Exposition> {
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), registry.contentType);
    return parseExposition(await res.text());
  }

  /** Every per-peer series of one side equals the peer's own counters. */
  function assertPeerSeries(e: Exposition, iface: string, self: Device, other: Device): void {
    const peer = self.getPeer(other.publicKey!)!;
    const l = { device: iface, public_key: key(other) };
    assert.equal(value(e, 'wireguard_peer_receive_bytes_total', l), peer.rxBytes);
    assert.equal(value(e, 'wireguard_peer_transmit_bytes_total', l), peer.txBytes);
    assert.equal(value(e, 'wireguard_peer_last_handshake_seconds', l), peer.lastHandshakeWallMs / 1000);
    assert.equal(value(e, 'wireguard_peer_info', { ...l, endpoint: String(peer.endpoint), name: '' }), 1);
    const allowed = select(e, 'wireguard_peer_allowed_ips_info', l);
    assert.deepEqual(
      allowed.map((s) => [s.labels.allowed_ips, s.labels.family, s.value]),
      self.allowedIps.entriesFor(peer).map((c) => [formatCidr(c), 'IPv4', 1]),
    );
    assert.equal(allowed.length, 1);
    assert.equal(value(e, 'wireguard_device_info', { device: iface, public_key: key(self) }), 1);
    assert.equal(value(e, 'wireguard_peers', { device: iface }), 1);
    assert.equal(value(e, 'wirecage_keypairs_in_use', { device: iface }), self.keypairs.used);
  }

  it('keeps the exported names and labels that dashboards read', () => {
    assert.deepEqual(
      METRIC_DEFINITIONS.map((d) => `${d.name}{${d.labels.join(',')}}`),
      [
        'wireguard_device_info{public_key}',
        'wireguard_peer_receive_bytes_total{public_key}',
        'wireguard_peer_transmit_bytes_total{public_key}',
        'wireguard_peer_last_handshake_seconds{public_key}',
        'wireguard_peer_info{public_key,endpoint,name}',
        'wireguard_peer_allowed_ips_info{public_key,allowed_ips,family}',
        'wireguard_peers{}',
        'wirecage_drops_total{reason}',
        'wirecage_keypairs_in_use{}',
        'wirecage_under_load{}',
        'wirecage_shards{}',
        'wirecage_shard_packets_total{shard,direction}',
        'wirecage_shard_drops_total{shard,reason}',
        'wirecage_shard_restarts_total{shard}',
        'wirecage_shard_coalesced_packets_total{shard}',
        'wirecage_ring_packets_total{ring,outcome}',
      ],
    );
    assert.equal(PEER_INFO.name, 'wireguard_peer_info', 'each definition is exported by its own name too');
    assert.equal(RING_PACKETS, METRIC_DEFINITIONS.at(-1));
  });

  it('declares every metric with its type and help, as prom-client writes them', async () => {
    const e = await scrape();
    for (const def of METRIC_DEFINITIONS) {
      assert.equal(e.types.get(def.name), def.type, def.name);
      assert.equal(e.help.get(def.name), def.help, def.name);
    }
    assert.equal(e.types.get('wireguard_peer_receive_bytes_total'), 'counter');
    assert.equal(e.types.get('wirecage_drops_total'), 'counter');
    assert.equal(e.types.get('wireguard_peer_last_handshake_seconds'), 'gauge');
    assert.equal(e.types.size, METRIC_DEFINITIONS.length, 'nothing but the engine metrics');
  });

  it('reports zero before any traffic: no handshake yet, every drop reason present', async () => {
    const e = await scrape();
    for (const iface of ['wga', 'wgb']) {
      assert.equal(value(e, 'wireguard_peers', { device: iface }), 1);
      assert.equal(value(e, 'wirecage_under_load', { device: iface }), 0);
      const drops = select(e, 'wirecage_drops_total', { device: iface });
      assert.deepEqual(drops.map((s) => s.labels.reason).sort(), [...DROP_REASONS].sort());
      assert.ok(drops.every((s) => s.value === 0));
    }
    const l = { device: 'wga', public_key: key(pair.b.device) };
    assert.equal(value(e, 'wireguard_peer_last_handshake_seconds', l), 0);
    assert.equal(value(e, 'wireguard_peer_transmit_bytes_total', l), 0);
  });

  it("matches the peers' counters after traffic, and follows them monotonically", async () => {
    const { a, b } = pair;
    pair.send(a, 'hello');
    await pair.run();
    pair.send(b, 'world');
    await pair.run();
    assert.equal(b.received.length, 1);
    assert.equal(a.received.length, 1);

    const first = await scrape();
    assertPeerSeries(first, 'wga', a.device, b.device);
    assertPeerSeries(first, 'wgb', b.device, a.device);
    const aToB = { device: 'wga', public_key: key(b.device) };
    const bFromA = { device: 'wgb', public_key: key(a.device) };
    // What one side sent is exactly what the other received (nothing is lost on this wire).
    assert.equal(value(first, 'wireguard_peer_transmit_bytes_total', aToB), value(first, 'wireguard_peer_receive_bytes_total', bFromA));
    assert.ok(value(first, 'wireguard_peer_transmit_bytes_total', aToB) > 148, 'an initiation and data at least');
    assert.equal(value(first, 'wireguard_peer_last_handshake_seconds', aToB), pair.clock.wallNow() / 1000);
    assert.ok(value(first, 'wirecage_keypairs_in_use', { device: 'wga' }) >= 1);

    for (let i = 0; i < 10; i++) pair.send(a, `more ${i}`);
    await pair.run();
    const second = await scrape();
    assertPeerSeries(second, 'wga', a.device, b.device);
    assertPeerSeries(second, 'wgb', b.device, a.device);
    const grew = value(second, 'wireguard_peer_transmit_bytes_total', aToB) - value(first, 'wireguard_peer_transmit_bytes_total', aToB);
    // Ten data messages: 32 bytes of header and tag, the 36-byte packet padded to 48.
    assert.equal(grew, 10 * (32 + 48));
  });

  it('counts a malformed datagram under reason="malformed" and nowhere else', async () => {
    const before = await scrape();
    pair.b.device.receiveUdp(Buffer.from([9, 0, 0, 0, 1, 2, 3]), pair.a.endpoint.address, pair.a.endpoint.port);
    const after = await scrape();
    const l = { device: 'wgb', reason: 'malformed' };
    assert.equal(value(after, 'wirecage_drops_total', l), value(before, 'wirecage_drops_total', l) + 1);
    assert.equal(value(after, 'wirecage_drops_total', l), pair.b.device.drops.get('malformed'));
    const total = (e: Exposition) => select(e, 'wirecage_drops_total').reduce((t, s) => t + s.value, 0);
    assert.equal(total(after), total(before) + 1);
  });

  it('shows under_load while the handshake queue is flooded, and 0 again a second later', async () => {
    const { a, b } = pair;
    // Well-formed initiations with garbage inside: they fill the queue, then fail mac1.
    const junk = Buffer.alloc(148);
    junk[0] = 1;
    for (let i = 0; i < 600; i++) b.device.receiveUdp(Buffer.from(junk), a.endpoint.address, a.endpoint.port);
    await b.device.settled();
    const flooded = await scrape();
    assert.equal(value(flooded, 'wirecage_under_load', { device: 'wgb' }), 1);
    assert.equal(value(flooded, 'wirecage_under_load', { device: 'wga' }), 0);
    assert.equal(value(flooded, 'wirecage_drops_total', { device: 'wgb', reason: 'mac1' }), 600);

    pair.clock.advance(1001);
    const calm = await scrape();
    assert.equal(value(calm, 'wirecage_under_load', { device: 'wgb' }), 0);
  });

  it("drops a removed peer's series, and an engine's series when it is removed", async () => {
    const { a, b } = pair;
    pair.send(a, 'hello');
    await pair.run();
    a.device.removePeer(b.device.publicKey!);
    const e = await scrape();
    assert.equal(select(e, 'wireguard_peer_receive_bytes_total', { device: 'wga' }).length, 0);
    assert.equal(select(e, 'wireguard_peer_info', { device: 'wga' }).length, 0);
    assert.equal(value(e, 'wireguard_peers', { device: 'wga' }), 0);
    assert.equal(select(e, 'wireguard_peer_receive_bytes_total', { device: 'wgb' }).length, 1);

    handles[1]!.remove();
    handles[1]!.remove();
    const left = await scrape();
    assert.ok(left.samples.length > 0);
    assert.ok(left.samples.every((s) => s.labels.device === 'wga'));

    handles[0]!.remove();
    assert.equal((await scrape()).samples.length, 0, 'the last engine out takes the metrics with it');
    // ...so the registry takes engines with other label names again.
    engineMetrics(a.device, { registry, labels: { device: 'x', node: 'n1' } });
    assert.equal(value(await scrape(), 'wireguard_peers', { device: 'x', node: 'n1' }), 0);
  });
});

describe('engineMetrics options', () => {
  let pair: Pair;
  beforeEach(() => (pair = new Pair()));
  afterEach(() => pair.close());

  it('makes its own registry and names the device "wirecage" by default', async () => {
    const m = engineMetrics(pair.a.device);
    assert.ok(m.registry instanceof Registry);
    const e = parseExposition(await m.registry.metrics());
    assert.equal(value(e, 'wireguard_peers', { device: 'wirecage' }), 1);
  });

  it('puts extra constant labels on every series', async () => {
    const m = engineMetrics(pair.a.device, { labels: { device: 'wg7', node: 'eu-1' } });
    const e = parseExposition(await m.registry.metrics());
    assert.ok(e.samples.length > DROP_REASONS.length);
    assert.ok(e.samples.every((s) => s.labels.device === 'wg7' && s.labels.node === 'eu-1'));
  });

  it('refuses two engines with the same labels in one registry', () => {
    const registry = new Registry();
    engineMetrics(pair.a.device, { registry, labels: { device: 'wg0' } });
    assert.throws(
      () => engineMetrics(pair.b.device, { registry, labels: { device: 'wg0' } }),
      /labels \{device="wg0"\} is already reported/,
    );
  });

  it('refuses engines with different label names in one registry', () => {
    const registry = new Registry();
    engineMetrics(pair.a.device, { registry, labels: { device: 'wg0' } });
    assert.throws(
      () => engineMetrics(pair.b.device, { registry, labels: { device: 'wg1', node: 'n' } }),
      /same label names: this registry uses \{device\}, got \{device, node\}/,
    );
  });

  it("writes IPv6 allowed IPs in RFC 5952 form (as wg show), with the exporter's family names", async () => {
    pair.a.device.setPeer(pair.b.device.publicKey!, {
      allowedIps: [parseCidr('2001:db8:0:0:1:0:0:0/80'), parseCidr('fd00:0:0:0:0:0:0:1/128')],
    });
    const m = engineMetrics(pair.a.device);
    const e = parseExposition(await m.registry.metrics());
    const got = select(e, 'wireguard_peer_allowed_ips_info', { device: 'wirecage' }).map(
      (s) => `${s.labels.allowed_ips} ${s.labels.family}`,
    );
    assert.deepEqual(got.slice(1), ['2001:db8:0:0:1::/80 IPv6', 'fd00::1/128 IPv6']);
    assert.deepEqual(
      got.slice(1).map((t) => t.split(' ')[0]),
      [formatCidr(parseCidr('2001:db8:0:0:1::/80')), 'fd00::1/128'],
    );
  });

  it('refuses a label the metrics set themselves', () => {
    assert.throws(() => engineMetrics(pair.a.device, { labels: { reason: 'x' } }), /label "reason" is set by the metrics/);
  });

  it('refuses a registry that already holds a metric of the same name, and leaves it as it was', async () => {
    const registry = new Registry();
    registry.registerMetric(new (await import('prom-client')).Gauge({ name: 'wirecage_drops_total', help: 'not ours', registers: [] }));
    assert.throws(() => engineMetrics(pair.a.device, { registry }), /already holds a metric named wirecage_drops_total/);
    assert.deepEqual(
      (await registry.getMetricsAsJSON()).map((m) => m.name),
      ['wirecage_drops_total'],
    );
  });
});
