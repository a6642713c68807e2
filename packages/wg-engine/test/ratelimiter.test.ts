// The per-source token buckets (the kernel's ratelimiter.c numbers by
// default; wirecagesrv's API uses its own, see its rate-limit test).
import assert from 'node:assert/strict';
import { FakeClock, RATELIMIT_PACKETS_BURSTABLE, RATELIMIT_PACKETS_PER_SECOND, RateLimiter } from '../src/index.js';

const S = 1000;

describe('RateLimiter', () => {
  const COST_MS = S / RATELIMIT_PACKETS_PER_SECOND;

  it('allows a burst of 5 and then 20 per second, per source address', () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    for (let i = 0; i < RATELIMIT_PACKETS_BURSTABLE; i++) assert.ok(rl.allow('192.0.2.1'), `burst packet ${i}`);
    assert.equal(rl.allow('192.0.2.1'), false);
    assert.ok(rl.allow('192.0.2.2'), 'another source has its own budget');

    clock.advance(COST_MS - 1);
    assert.equal(rl.allow('192.0.2.1'), false);
    clock.advance(1);
    assert.ok(rl.allow('192.0.2.1'));
    assert.equal(rl.allow('192.0.2.1'), false);

    // A sender trying every 5 ms for 10 s gets exactly 20 per second.
    let passed = 0;
    for (let t = 0; t < 10 * S; t += 5) {
      clock.advance(5);
      if (rl.allow('192.0.2.1')) passed++;
    }
    assert.equal(passed, 10 * RATELIMIT_PACKETS_PER_SECOND);

    // Idle long enough to refill, the burst is back, and no more than it.
    clock.advance(COST_MS * RATELIMIT_PACKETS_BURSTABLE * 2);
    let burst = 0;
    while (rl.allow('192.0.2.1')) burst++;
    assert.equal(burst, RATELIMIT_PACKETS_BURSTABLE);
  });

  it('keys IPv6 sources by their /64', () => {
    assert.equal(RateLimiter.sourceKey('2001:0DB8:0001:0002::1'), RateLimiter.sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    assert.notEqual(RateLimiter.sourceKey('2001:db8:1:2::1'), RateLimiter.sourceKey('2001:db8:1:3::1'));
    assert.equal(RateLimiter.sourceKey('::1'), RateLimiter.sourceKey('0:0:0:0:1::'));

    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    for (let i = 0; i < RATELIMIT_PACKETS_BURSTABLE; i++) assert.ok(rl.allow(`2001:db8:1:2::${i + 1}`));
    assert.equal(rl.allow('2001:db8:1:2:abcd::9'), false, 'the same /64 shares one budget');
    assert.ok(rl.allow('2001:db8:1:3::1'), 'the next /64 does not');
    assert.equal(rl.size, 2);
  });

  it('forgets sources idle for more than a second', () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) assert.ok(rl.allow(a));
    clock.advance(500);
    assert.ok(rl.allow('192.0.2.3'));
    assert.equal(rl.size, 3);
    clock.advance(501);
    assert.ok(rl.allow('192.0.2.4'));
    assert.equal(rl.size, 2, 'the two idle entries went; the one seen 501 ms ago stayed');
    clock.advance(S + 1);
    assert.ok(rl.allow('192.0.2.5'));
    assert.equal(rl.size, 1);
  });

  it('refuses new sources while its table is full of live ones, and recovers once they go idle', () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    const MAX_ENTRIES = 8192;
    for (let i = 0; i < MAX_ENTRIES; i++) rl.allow(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    assert.equal(rl.size, MAX_ENTRIES);
    assert.equal(rl.allow('192.0.2.1'), false);
    assert.ok(rl.allow('10.0.0.1'), 'known sources keep their budget');
    clock.advance(S + 1);
    assert.ok(rl.allow('192.0.2.1'));
    assert.equal(rl.size, 1);
  });
});

describe('RateLimiter.take', () => {
  it('says how long until the next take, and keys an IPv4-mapped source as its IPv4 address', () => {
    const clock = new FakeClock();
    const rl = new RateLimiter({ burst: 1, perMinute: 60, now: () => clock.now() });
    assert.equal(rl.take('192.0.2.7'), 0);
    assert.equal(rl.take('::ffff:192.0.2.7'), 1000, 'the same bucket, empty for a whole second');
    clock.advance(400);
    assert.equal(rl.take('192.0.2.7'), 600);
    assert.equal(RateLimiter.sourceKey('::FFFF:192.0.2.7'), '192.0.2.7');
    assert.equal(RateLimiter.sourceKey('not an address'), 'not an address', 'anything else is its own source');
  });

  it('refuses a rate that would divide by zero', () => {
    assert.throws(() => new RateLimiter({ perMinute: 0 }), /rate > 0/);
    assert.throws(() => new RateLimiter({ burst: 0 }), /burst >= 1/);
  });
});
