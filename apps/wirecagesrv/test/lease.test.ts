import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startLeaseExpiry } from '../src/api/lease-expiry.js';
import { ForwardManager } from '../src/forwards/index.js';
import { expiryCheckInterval, parseLease, renewStep, SqliteRegistry, type PeerRecord, type Registry } from '../src/registry/index.js';
import { freePort, portTaken } from './api-client.js';
import { newPublicKey, tempDirs } from './helpers.js';

// Leases on a real registry file: the arithmetic of registering, renewing by
// a handshake (at most one step at a time) and running out, and the server's
// sweep removing an expired peer by the path DELETE /v1/register takes.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('leases', () => {
  const tmp = tempDirs();
  const open: Registry[] = [];
  after(() => {
    for (const r of open) void r.close();
    tmp.cleanup();
  });
  const registry = async (leaseMs?: number) => {
    const r = await SqliteRegistry.open({ location: join(tmp.make(), 'registry.db'), subnet6: 'fd00:aa::/64', leaseMs });
    open.push(r);
    return r;
  };

  it('parses --lease durations', () => {
    assert.equal(parseLease('30d'), 30 * DAY);
    assert.equal(parseLease('12h'), 12 * HOUR);
    assert.equal(parseLease('90m'), 90 * 60_000);
    assert.equal(parseLease('3s'), 3000);
    assert.equal(parseLease('1d12h'), 36 * HOUR);
    assert.equal(parseLease(' 2H '), 2 * HOUR, 'case and spaces do not matter');
    for (const bad of ['', '30', 'd', '1.5h', '-1d', '1w', '0s', '3651d', '1h 30m']) {
      assert.throws(() => parseLease(bad), /--lease ".*" must be/, bad);
    }
  });

  it('renews by handshake one step at a time (an hour, or half a short lease), and checks for expiry every quarter lease within 1-60 s', () => {
    assert.equal(renewStep(30 * DAY), HOUR);
    assert.equal(renewStep(HOUR), HOUR / 2);
    assert.equal(renewStep(3000), 1500);
    assert.equal(expiryCheckInterval(30 * DAY), 60_000);
    assert.equal(expiryCheckInterval(3000), 1000);
    assert.equal(expiryCheckInterval(20_000), 5000);
  });

  it('a registration holds a lease from now; registering again renews it', async () => {
    const r = await registry(30 * DAY);
    const k = newPublicKey();
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const first = (await r.register(k, t0)).peer;
    assert.equal(first.leaseExpires.getTime(), t0 + 30 * DAY);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + 30 * DAY);
    const again = await r.register(k, t0 + 5 * DAY);
    assert.equal(again.created, false);
    assert.equal(again.peer.address4, first.address4);
    assert.equal(again.peer.leaseExpires.getTime(), t0 + 35 * DAY);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + 35 * DAY, 'recorded');
  });

  it('a handshake renews the lease only once it gains a whole step, and never revives an expired one', async () => {
    const r = await registry(30 * DAY);
    const k = newPublicKey();
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    await r.register(k, t0);
    await r.touch(k, t0 + 59 * 60_000, '192.0.2.7:51820');
    let p = (await r.get(k))!;
    assert.equal(p.leaseExpires.getTime(), t0 + 30 * DAY, 'under an hour gained: the lease stays');
    assert.equal(p.lastSeen!.getTime(), t0 + 59 * 60_000, 'the handshake itself is recorded');
    await r.touch(k, t0 + HOUR);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + HOUR + 30 * DAY, 'an hour gained: renewed');
    await r.touch(k, t0 + HOUR + 2 * 60_000);
    assert.equal((await r.get(k))!.leaseExpires.getTime(), t0 + HOUR + 30 * DAY, 'the next rekey, two minutes on, does not move it');
    // Past its end, a handshake (before the sweep came) does not bring it back.
    const late = t0 + HOUR + 31 * DAY;
    await r.touch(k, late);
    p = (await r.get(k))!;
    assert.equal(p.leaseExpires.getTime(), t0 + HOUR + 30 * DAY);
    assert.equal(p.lastSeen!.getTime(), late);
  });

  it('lists expired peers and removes one only while it is still expired', async () => {
    const r = await registry(HOUR);
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const [a, b, c] = [newPublicKey(), newPublicKey(), newPublicKey()];
    await r.register(a, t0);
    await r.register(b, t0 + 10 * 60_000);
    await r.register(c, t0 + 2 * HOUR);
    assert.deepEqual(
      (await r.expired(t0 + HOUR - 1)).map((p) => p.publicKey),
      [],
    );
    assert.deepEqual(
      (await r.expired(t0 + HOUR)).map((p) => p.publicKey),
      [a],
      'expired at its end, inclusive',
    );
    assert.deepEqual(
      (await r.expired(t0 + 2 * HOUR)).map((p) => p.publicKey),
      [a, b],
      'oldest first',
    );
    // b registers again after the sweep listed it: it is kept.
    await r.register(b, t0 + 2 * HOUR);
    assert.equal(await r.removeExpired(b, t0 + 2 * HOUR), false);
    assert.equal(await r.removeExpired(a, t0 + 2 * HOUR), true);
    assert.deepEqual((await r.list()).map((p) => p.publicKey).sort(), [b, c].sort());
  });

  it('the sweep removes an expired peer as DELETE does: registry row, forwards and their listeners, and onRemoved; a live one stays', async () => {
    const r = await registry(400);
    const manager = new ForwardManager({ listenAddress: '127.0.0.1' });
    const removed: PeerRecord[] = [];
    const lines: string[] = [];
    const log = { debug() {}, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
    const expiring = newPublicKey();
    const staying = newPublicKey();
    const peer = (await r.register(expiring)).peer;
    const port = await freePort();
    await r.forwards.add({ protocol: 'tcp', publicPort: port, targetPort: 80, peerPublicKey: expiring });
    await manager.open({ protocol: 'tcp', publicPort: port, targetPort: 80, address4: peer.address4, address6: peer.address6 });
    assert.ok(await portTaken(port), 'the forward listens');
    const expiry = startLeaseExpiry({ registry: r, manager, onRemoved: (p) => void removed.push(p), intervalMs: 50, logger: log });
    try {
      // The other peer keeps registering: its lease never runs out.
      const renew = setInterval(() => void r.register(staying), 100);
      try {
        const deadline = Date.now() + 5000;
        while ((await r.get(expiring)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
      } finally {
        clearInterval(renew);
      }
      assert.equal(await r.get(expiring), undefined, 'out of the registry');
      assert.deepEqual(await r.forwards.list(expiring), [], 'its forwards went with it');
      assert.equal(manager.isOpen('tcp', port), false, 'the forward listener is closed');
      assert.equal(await portTaken(port), false, 'the port is free');
      assert.deepEqual(
        removed.map((p) => p.publicKey),
        [expiring],
        'onRemoved (device, NAT flows) ran once',
      );
      assert.ok(await r.get(staying), 'a renewed peer stays');
      assert.ok(
        lines.some((l) => /removed peer .* 1 forward\(s\)\): its lease ended \d{4}-/.test(l)),
        lines.join('\n'),
      );
    } finally {
      await expiry.stop();
      await manager.closeAll();
    }
  });

  it('the sweep at start removes what expired while the server was down', async () => {
    const path = join(tmp.make(), 'registry.db');
    const before = await SqliteRegistry.open({ location: path, leaseMs: 1000 });
    const k = newPublicKey();
    await before.register(k, Date.now() - 5000);
    await before.close();
    const r = await SqliteRegistry.open({ location: path, leaseMs: 1000 });
    open.push(r);
    const removed: string[] = [];
    const expiry = startLeaseExpiry({
      registry: r,
      manager: new ForwardManager(),
      onRemoved: (p) => void removed.push(p.publicKey),
      intervalMs: 60_000,
    });
    try {
      // sweep() joins the one started at start, which found the peer.
      assert.equal(await expiry.sweep(), 1);
      assert.deepEqual(removed, [k]);
      assert.equal(await expiry.sweep(), 0, 'nothing is left for the next');
      assert.equal(await r.count(), 0);
    } finally {
      await expiry.stop();
    }
  });
});
