import assert from 'node:assert/strict';
import { EgressPolicy, parseAllowDest } from '../src/nat/policy.js';
import { FlowLimits } from '../src/nat/limits.js';

describe('NAT egress policy', () => {
  const pools = ['10.200.100.0/24', 'fd12:3456:789a::/64'];
  const strict = new EgressPolicy({ serverPools: pools });

  it('refuses loopback, link-local (cloud metadata), multicast, broadcast, unspecified and reserved', () => {
    const cases: [string, string][] = [
      ['127.0.0.1', 'loopback'],
      ['127.255.0.9', 'loopback'],
      ['::1', 'loopback'],
      ['169.254.169.254', 'link-local'],
      ['fe80::1', 'link-local'],
      ['224.0.0.251', 'multicast'],
      ['ff02::1', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['240.0.0.1', 'reserved'],
    ];
    for (const [a, why] of cases) assert.equal(strict.check(a), why, a);
  });

  it("refuses private ranges and the server's own pools", () => {
    for (const a of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', 'fc00::1', 'fd00::2'])
      assert.equal(strict.check(a), 'private', a);
    assert.equal(strict.check('10.200.100.7'), 'server-pool');
    assert.equal(strict.check('fd12:3456:789a::9'), 'server-pool');
  });

  it('allows public addresses, and the edges just outside refused ranges', () => {
    for (const a of ['93.184.216.34', '2606:4700::1111', '172.32.0.1', '100.128.0.1', '169.255.0.1', '198.20.0.1', '11.0.0.1'])
      assert.equal(strict.check(a), null, a);
  });

  it('judges an IPv4-mapped IPv6 address by the IPv4 address it carries', () => {
    assert.equal(strict.check('::ffff:127.0.0.1'), 'loopback');
    assert.equal(strict.check('::ffff:169.254.169.254'), 'link-local');
    assert.equal(strict.check('::ffff:93.184.216.34'), null);
  });

  it('judges NAT64 and 6to4 addresses by the IPv4 address inside; refuses Teredo, the rest of 64:ff9b:1::/48, 198.18/15 and 192.0.0/24', () => {
    const cases: [string, string | null][] = [
      ['64:ff9b::a9fe:a9fe', 'link-local'],
      ['64:ff9b::7f00:1', 'loopback'],
      ['64:ff9b::a00:1', 'private'],
      ['64:ff9b::5db8:d822', null],
      ['64:ff9b:1::a9fe:a9fe', 'link-local'],
      ['64:ff9b:1::5db8:d822', null],
      ['64:ff9b:1:0:7f:0:1:0', 'nat64'],
      ['64:ff9b:1:ffff::1', 'nat64'],
      ['2002:a9fe:a9fe::1', 'link-local'],
      ['2002:c0a8:101:5::9', 'private'],
      ['2002:5db8:d822::1', null],
      ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
      ['2001:1::1', null],
      ['198.18.0.1', 'reserved'],
      ['198.19.255.255', 'reserved'],
      ['192.0.0.170', 'reserved'],
      ['192.0.1.1', null],
    ];
    for (const [a, why] of cases) assert.equal(strict.check(a), why, a);
  });

  it("refuses the host's own addresses as they are now, and their translations; --allow-dest opens them", () => {
    const p = new EgressPolicy({ serverPools: pools, allowDest: ['203.0.113.9/32'] });
    p.setHostAddresses(['203.0.113.7', '203.0.113.9', '2001:db8::7']);
    assert.equal(p.check('203.0.113.7'), 'host');
    assert.equal(p.check('64:ff9b::cb00:7107'), 'host');
    assert.equal(p.check('2002:cb00:7107::1'), 'host');
    assert.equal(p.check('2001:db8::7'), 'host');
    assert.equal(p.check('203.0.113.9'), null);
    assert.equal(p.check('64:ff9b::cb00:7109'), null);
    p.setHostAddresses(['2001:db8::7']);
    assert.equal(p.check('203.0.113.7'), null);
  });

  it('--allow-lan opens the private ranges only', () => {
    const lan = new EgressPolicy({ allowLan: true, serverPools: pools });
    assert.equal(lan.check('192.168.1.1'), null);
    assert.equal(lan.check('fd00::2'), null);
    assert.equal(lan.check('127.0.0.1'), 'loopback');
    assert.equal(lan.check('169.254.169.254'), 'link-local');
    assert.equal(lan.check('10.200.100.7'), 'server-pool');
  });

  it('--allow-dest opens exactly its prefix, whatever refused it', () => {
    const p = new EgressPolicy({ allowDest: ['10.99.1.0/24', 'fd7a:99:1::/64', '127.0.0.53'], serverPools: pools });
    assert.equal(p.check('10.99.1.2'), null);
    assert.equal(p.check('10.99.2.2'), 'private');
    assert.equal(p.check('fd7a:99:1::2'), null);
    assert.equal(p.check('fd7a:99:2::2'), 'private');
    assert.equal(p.check('127.0.0.53'), null);
    assert.equal(p.check('127.0.0.1'), 'loopback');
  });

  it('names a malformed --allow-dest', () => {
    assert.throws(() => parseAllowDest('10.0.0.0/33'), /--allow-dest "10.0.0.0\/33" is not an address or CIDR/);
    assert.throws(() => parseAllowDest('lan'), /--allow-dest "lan"/);
  });
});

describe('NAT flow limits', () => {
  it('limits per source and in total, and gives slots back', () => {
    const l = new FlowLimits(3, 2);
    assert.equal(l.acquire('a'), null);
    assert.equal(l.acquire('a'), null);
    assert.equal(l.acquire('a'), 'peer');
    assert.equal(l.acquire('b'), null);
    assert.equal(l.acquire('c'), 'global');
    l.release('a');
    assert.equal(l.activeFor('a'), 1);
    assert.equal(l.acquire('c'), null);
    assert.equal(l.active, 3);
    l.release('unknown');
    assert.equal(l.active, 3);
  });
});
