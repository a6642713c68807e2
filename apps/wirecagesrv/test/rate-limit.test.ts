import assert from 'node:assert/strict';
import { RateLimiter, sourceKey } from '../src/api/rate-limit.js';

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
    const rl = new RateLimiter({ burst: 2, perMinute: 6, now: () => now });
    assert.equal(rl.take('192.0.2.1'), 0);
    assert.equal(rl.take('192.0.2.1'), 0);
    assert.equal(rl.take('192.0.2.1'), 10, 'seconds until the next attempt');
    assert.equal(rl.take('192.0.2.2'), 0, 'another source has its own bucket');
    assert.equal(rl.take('2001:db8::1'), 0);
    assert.equal(rl.take('2001:db8::2'), 0);
    assert.ok(rl.take('2001:db8::3') > 0, 'one /64 shares a bucket');
    now += 10_000;
    assert.equal(rl.take('192.0.2.1'), 0);
    assert.ok(rl.take('192.0.2.1') > 0);
  });

  it('forgets sources beyond its bound, full buckets first', () => {
    let now = 0;
    const rl = new RateLimiter({ burst: 1, perMinute: 60, maxSources: 3, now: () => now });
    rl.take('192.0.2.1');
    rl.take('192.0.2.2');
    rl.take('192.0.2.3');
    now += 500;
    rl.take('192.0.2.4');
    assert.equal(rl.size, 3);
    now += 2000;
    rl.take('192.0.2.5');
    assert.ok(rl.size <= 3);
  });
});
