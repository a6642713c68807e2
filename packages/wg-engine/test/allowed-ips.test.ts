import assert from 'node:assert/strict';
import { AllowedIps, formatCidr, parseCidr, type Cidr } from '../src/allowed-ips.js';

const ip4 = (s: string) => parseCidr(s).address;

describe('allowed IPs', () => {
  describe('parseCidr / formatCidr', () => {
    it('parses prefixes and bare addresses, clearing host bits', () => {
      assert.equal(formatCidr(parseCidr('10.1.2.3/8')), '10.0.0.0/8');
      assert.equal(formatCidr(parseCidr('10.1.2.3')), '10.1.2.3/32');
      assert.equal(formatCidr(parseCidr('fd00:1:2:3::7/64')), 'fd00:1:2:3::/64');
      assert.equal(formatCidr(parseCidr('::1')), '::1/128');
      assert.equal(formatCidr(parseCidr('::/0')), '::/0');
      assert.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0');
      assert.equal(formatCidr(parseCidr('2001:db8:0:0:1:0:0:1/128')), '2001:db8::1:0:0:1/128');
      assert.equal(formatCidr(parseCidr('::ffff:1.2.3.4/128')), '::ffff:102:304/128');
      assert.equal(formatCidr(parseCidr(' 192.0.2.1/24 ')), '192.0.2.0/24');
    });

    it('rejects what is not an address or prefix, naming it', () => {
      assert.throws(() => parseCidr('10.0.0.0/33'), /"10.0.0.0\/33" has prefix length "33"; IPv4 allows 0-32/);
      assert.throws(() => parseCidr('fd00::/129'), /IPv6 allows 0-128/);
      assert.throws(() => parseCidr('10.0.0/8'), /"10.0.0\/8" is not an IP address or prefix/);
      assert.throws(() => parseCidr('example.org'), /not an IP address/);
      assert.throws(() => parseCidr('10.0.0.0/-1'), /prefix length/);
      assert.throws(() => parseCidr('10.0.0.0/'), /prefix length/);
    });
  });

  describe('lookup', () => {
    it('matches the longest prefix, per family, with /0 defaults', () => {
      const t = new AllowedIps<string>();
      t.insert(parseCidr('0.0.0.0/0'), 'default4');
      t.insert(parseCidr('10.0.0.0/8'), 'a');
      t.insert(parseCidr('10.1.0.0/16'), 'b');
      t.insert(parseCidr('10.1.2.3/32'), 'c');
      t.insert(parseCidr('fd00::/8'), 'v6');
      assert.equal(t.lookup(4, ip4('10.1.2.3')), 'c');
      assert.equal(t.lookup(4, ip4('10.1.2.4')), 'b');
      assert.equal(t.lookup(4, ip4('10.2.0.1')), 'a');
      assert.equal(t.lookup(4, ip4('192.0.2.1')), 'default4');
      assert.equal(t.lookup(6, parseCidr('fd12::1').address), 'v6');
      assert.equal(t.lookup(6, parseCidr('2001:db8::1').address), undefined, 'no IPv6 default: v4 /0 does not leak');
      assert.equal(t.size, 5);
    });

    it('reads the address straight out of a packet at an offset', () => {
      const t = new AllowedIps<string>();
      t.insert(parseCidr('192.0.2.0/24'), 'p');
      const packet = Buffer.alloc(20);
      ip4('192.0.2.77').copy(packet, 16);
      assert.equal(t.lookup(4, packet, 16), 'p');
      assert.equal(t.lookup(4, packet, 12), undefined);
    });

    it('gives the source check to the longest-prefix owner when one peer owns a subnet of another', () => {
      // CONFORMANCE: peer B owns 10.0.0.0/8, peer A owns 10.5.0.0/16 inside it. B must not be able to
      // send from 10.5.x.x: the owner of the source is A.
      const t = new AllowedIps<string>();
      t.insert(parseCidr('10.0.0.0/8'), 'B');
      t.insert(parseCidr('10.5.0.0/16'), 'A');
      assert.equal(t.lookup(4, ip4('10.5.9.9')), 'A');
      assert.notEqual(t.lookup(4, ip4('10.5.9.9')), 'B');
      assert.equal(t.lookup(4, ip4('10.6.0.1')), 'B');
    });
  });

  describe('changes', () => {
    it('moves a prefix to a new owner on re-insert, as wg set does', () => {
      const t = new AllowedIps<string>();
      t.insert(parseCidr('10.0.0.0/24'), 'a');
      t.insert(parseCidr('10.0.0.0/24'), 'b');
      assert.equal(t.lookup(4, ip4('10.0.0.1')), 'b');
      assert.deepEqual(t.entriesFor('a'), []);
      assert.equal(t.size, 1);
    });

    it('removes only what the given owner holds, and prunes', () => {
      const t = new AllowedIps<string>();
      t.insert(parseCidr('10.0.0.0/24'), 'a');
      t.insert(parseCidr('10.0.0.0/16'), 'b');
      assert.equal(t.remove(parseCidr('10.0.0.0/24'), 'b'), false);
      assert.equal(t.remove(parseCidr('10.0.0.0/24'), 'a'), true);
      assert.equal(t.remove(parseCidr('10.0.0.0/24'), 'a'), false);
      assert.equal(t.lookup(4, ip4('10.0.0.1')), 'b');
      assert.equal(t.size, 1);
    });

    it('removes every prefix of one owner and lists an owner\'s prefixes in insertion order', () => {
      const t = new AllowedIps<string>();
      for (const c of ['10.2.0.0/16', 'fd00::/64', '10.1.0.0/16', '0.0.0.0/0']) t.insert(parseCidr(c), 'a');
      t.insert(parseCidr('10.3.0.0/16'), 'b');
      assert.deepEqual(t.entriesFor('a').map(formatCidr), ['10.2.0.0/16', 'fd00::/64', '10.1.0.0/16', '0.0.0.0/0']);
      t.removeByValue('a');
      assert.deepEqual(t.entriesFor('a'), []);
      assert.equal(t.lookup(4, ip4('10.2.0.1')), undefined);
      assert.equal(t.lookup(4, ip4('10.3.0.1')), 'b');
      assert.equal(t.size, 1);
      t.clear();
      assert.equal(t.size, 0);
      assert.equal(t.lookup(4, ip4('10.3.0.1')), undefined);
    });
  });

  describe('against a naive model', () => {
    // A seeded PRNG so a failure reproduces.
    function prng(seed: number) {
      let s = seed >>> 0;
      return () => {
        s ^= s << 13;
        s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5;
        s >>>= 0;
        return s / 2 ** 32;
      };
    }

    function naiveLookup(entries: Map<string, { c: Cidr; v: number }>, family: 4 | 6, addr: Buffer): number | undefined {
      let best: { c: Cidr; v: number } | undefined;
      for (const e of entries.values()) {
        if (e.c.family !== family) continue;
        let match = true;
        for (let i = 0; i < e.c.prefix; i++) {
          const bit = (b: Buffer) => (b[i >> 3]! >> (7 - (i & 7))) & 1;
          if (bit(addr) !== bit(e.c.address)) {
            match = false;
            break;
          }
        }
        if (match && (!best || e.c.prefix > best.c.prefix)) best = e;
      }
      return best?.v;
    }

    for (const family of [4, 6] as const) {
      it(`agrees on thousands of random inserts, removes and lookups (IPv${family})`, () => {
        const seed = 0x5eed + family;
        const rnd = prng(seed);
        const len = family === 4 ? 4 : 16;
        const bits = len * 8;
        const t = new AllowedIps<number>();
        const model = new Map<string, { c: Cidr; v: number }>();
        // Addresses cluster under a few prefixes so that prefixes nest and collide often.
        const bases = Array.from({ length: 4 }, () => Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256))));
        const randomAddr = () => {
          const a = Buffer.from(bases[Math.floor(rnd() * bases.length)]!);
          const keep = Math.floor(rnd() * bits);
          for (let i = keep; i < bits; i++) if (rnd() < 0.5) a[i >> 3]! ^= 0x80 >> (i & 7);
          return a;
        };
        const randomCidr = (): Cidr => {
          const prefix = Math.floor(rnd() * (bits + 1));
          const text = `${family === 4 ? Array.from(randomAddr()).join('.') : formatIp6(randomAddr())}/${prefix}`;
          return parseCidr(text);
        };
        for (let step = 0; step < 4000; step++) {
          const r = rnd();
          if (r < 0.45) {
            const c = randomCidr();
            const v = Math.floor(rnd() * 8);
            t.insert(c, v);
            model.set(formatCidr(c), { c, v });
          } else if (r < 0.6) {
            const c = randomCidr();
            const v = Math.floor(rnd() * 8);
            const owned = model.get(formatCidr(c))?.v === v;
            assert.equal(t.remove(c, v), owned, `seed ${seed} step ${step}: remove ${formatCidr(c)}`);
            if (owned) model.delete(formatCidr(c));
          } else if (r < 0.62) {
            const v = Math.floor(rnd() * 8);
            t.removeByValue(v);
            for (const [k, e] of model) if (e.v === v) model.delete(k);
          } else {
            const a = randomAddr();
            assert.equal(t.lookup(family, a), naiveLookup(model, family, a), `seed ${seed} step ${step}`);
          }
        }
        assert.equal(t.size, model.size);
        for (let v = 0; v < 8; v++) {
          const mine = t.entriesFor(v).map(formatCidr).sort();
          const theirs = [...model.values()].filter((e) => e.v === v).map((e) => formatCidr(e.c)).sort();
          assert.deepEqual(mine, theirs);
        }
      });
    }
  });
});

function formatIp6(b: Buffer): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i).toString(16));
  return g.join(':');
}
