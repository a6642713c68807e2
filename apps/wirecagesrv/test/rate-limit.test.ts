// The API's per-client limit: @wirecage/wg-engine's RateLimiter with the
// API's numbers, as routeLimit (api/caller.ts) makes it.
import assert from 'node:assert/strict';
import { RateLimiter } from '@wirecage/wg-engine';

const sourceKey = RateLimiter.sourceKey;
const api = (o: { burst: number; perMinute: number; maxSources?: number; now: () => number }) =>
  new RateLimiter({ whenFull: 'forget-oldest', ...o });

describe('registration rate limit', () => {
  it('keys IPv4 by address, IPv4-mapped IPv6 as IPv4, IPv6 by /64', () => {
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('fe80::1'), sourceKey('fe80::2'));
  });

  it('allows a burst, then one attempt per refill interval, per source', () => {
    let now = 0;
    const rl = api({ burst: 2, perMinute: 6, now: () => now });
    assert.equal(rl.take('192.0.2.1'), 0);
    assert.equal(rl.take('192.0.2.1'), 0);
    assert.equal(rl.take('192.0.2.1'), 10_000, 'milliseconds until the next attempt');
    assert.equal(rl.take('192.0.2.2'), 0, 'another source has its own bucket');
    assert.equal(rl.take('2001:db8::1'), 0);
    assert.equal(rl.take('2001:db8::2'), 0);
    assert.ok(rl.take('2001:db8::3') > 0, 'one /64 shares a bucket');
    now += 10_000;
    assert.equal(rl.take('192.0.2.1'), 0);
    assert.ok(rl.take('192.0.2.1') > 0);
  });

  it('forgets sources beyond its bound, idle ones first, and never refuses a new one', () => {
    let now = 0;
    const rl = api({ burst: 1, perMinute: 60, maxSources: 3, now: () => now });
    rl.take('192.0.2.1');
    rl.take('192.0.2.2');
    rl.take('192.0.2.3');
    now += 500;
    assert.equal(rl.take('192.0.2.4'), 0, 'a new source gets its burst although the table is full');
    assert.equal(rl.size, 3);
    assert.equal(rl.take('192.0.2.1'), 0, 'the oldest source was forgotten: its bucket is full again');
    assert.ok(rl.take('192.0.2.3') > 0, 'a busy source it kept still waits');
    now += 2000;
    rl.take('192.0.2.5');
    assert.equal(rl.size, 1, 'sources idle past their refill went');
  });
});
