// Bad input: 100,000+ random and mutated datagrams (mutations of real
// initiation, response, cookie reply and transport messages) and malformed
// outgoing IP packets. Nothing may throw out of the engine, every refused
// datagram is counted, and afterwards the engines still handshake and carry
// traffic both ways.
import assert from 'node:assert/strict';
import { DROP_REASONS, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT, type Device } from '../src/index.js';
import { MemoryNet, ipv4Packet, ipv6Packet, type Datagram } from './fixtures/net.js';

function prng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

const SEED = Number(process.env.FUZZ_SEED ?? 0xc0ffee);
const COUNT = 100_000;

describe(`fuzzing the engine (seed ${SEED})`, function () {
  this.timeout(120_000);

  it('survives 100,000 random and mutated datagrams, counts every drop, and still works afterwards', async () => {
    const net = new MemoryNet();
    const a = net.addNode('192.0.2.1', 51001);
    const b = net.addNode('192.0.2.2', 51002);
    net.link(a, b, ['10.0.0.1/32', 'fd00::1/128'], ['10.0.0.2/32', 'fd00::2/128']);
    a.device.up();
    b.device.up();
    try {
      // Real messages of every type to mutate.
      a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'seed'));
      await net.run();
      b.device.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', 'seed reply'));
      await net.run();
      const cookie = b.device.cookieChecker.createReply(net.wire.find((d) => d.msg[0] === MESSAGE_INITIATION)!.msg, a.endpoint);
      const samples: Datagram[] = [
        ...net.wire.filter((d) => [MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT].includes(d.msg[0]!)),
        { from: b.endpoint, to: a.endpoint, msg: cookie },
      ];
      assert.ok(samples.some((d) => d.msg[0] === MESSAGE_RESPONSE));
      assert.ok(samples.some((d) => d.msg[0] === MESSAGE_TRANSPORT));
      assert.ok(samples.some((d) => d.msg[0] === MESSAGE_COOKIE_REPLY));

      const rnd = prng(SEED);
      const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const mutate = (): Buffer => {
        const r = rnd();
        if (r < 0.25) {
          // Pure noise, sometimes with a plausible type word.
          const m = Buffer.alloc(Math.floor(rnd() * 2000));
          for (let i = 0; i < m.length; i++) m[i] = Math.floor(rnd() * 256);
          if (m.length >= 4 && rnd() < 0.5) m.writeUInt32LE(1 + Math.floor(rnd() * 4), 0);
          return m;
        }
        const base = Buffer.from(pick(samples).msg);
        if (r < 0.45) return base.subarray(0, Math.floor(rnd() * base.length)); // truncated
        if (r < 0.55) return Buffer.concat([base, Buffer.alloc(1 + Math.floor(rnd() * 64), Math.floor(rnd() * 256))]); // extended
        if (r < 0.65) {
          base[1 + Math.floor(rnd() * 3)] = 1 + Math.floor(rnd() * 255); // reserved bytes set
          return base;
        }
        if (r < 0.75) {
          base.writeUInt32LE(1 + Math.floor(rnd() * 4), 0); // type swapped
          return base;
        }
        if (r < 0.8) return base; // replayed as is
        const flips = 1 + Math.floor(rnd() * 4);
        for (let i = 0; i < flips; i++) base[Math.floor(rnd() * base.length)]! ^= 1 << Math.floor(rnd() * 8);
        return base;
      };

      // Deliveries that are not drops: data a device accepted and wrote to its TUN.
      const received = (d: Device) => (d === a.device ? a.received.length : b.received.length);
      const drops = (d: Device) => d.drops.total();
      const before = new Map([a.device, b.device].map((d) => [d, { drops: drops(d), received: received(d) }]));
      let sent = 0;
      net.queue = [];
      for (let i = 0; i < COUNT; i++) {
        const target = rnd() < 0.8 ? b : a;
        const from = rnd() < 0.5 ? (target === b ? a.endpoint : b.endpoint) : { address: `198.51.100.${Math.floor(rnd() * 250)}`, port: 1 + Math.floor(rnd() * 65000) };
        target.device.receiveUdp(mutate(), from.address, from.port);
        sent++;
        // Keep the handshake queue well under its capacity and memory flat.
        if (i % 1000 === 999) {
          await Promise.all([a.device.settled(), b.device.settled()]);
          net.queue = []; // answers (responses, cookies) go nowhere
        }
      }
      await Promise.all([a.device.settled(), b.device.settled()]);
      // Oversized datagrams.
      for (let i = 0; i < 3; i++) b.device.receiveUdp(Buffer.alloc(65536 + i * 1000), a.endpoint.address, a.endpoint.port);
      sent += 3;
      await Promise.all([a.device.settled(), b.device.settled()]);
      assert.ok(b.device.drops.get('oversized') >= 3);

      // Accounting: every datagram was either dropped under a reason, delivered, or consumed as a
      // valid handshake/cookie/keepalive message (mutations that happened to stay valid are rare).
      let accounted = 0;
      for (const d of [a.device, b.device]) {
        accounted += drops(d) - before.get(d)!.drops + received(d) - before.get(d)!.received;
      }
      assert.ok(accounted <= sent, `${accounted} outcomes for ${sent} datagrams`);
      assert.ok(accounted >= sent * 0.99, `only ${accounted} of ${sent} datagrams were counted as dropped or delivered`);
      for (const r of ['malformed', 'mac1', 'unknown-receiver', 'transport-decrypt', 'replay'] as const) {
        assert.ok(b.device.drops.get(r) > 0, `some drops counted as ${r}`);
      }
      assert.deepEqual(Object.keys(b.device.drops.toJSON()), [...DROP_REASONS]);

      // Outgoing garbage from the TUN side.
      const out = b.device.drops.get('outgoing-malformed') + b.device.drops.get('no-route');
      const badPackets: Buffer[] = [
        Buffer.alloc(0),
        Buffer.from([0x45]),
        Buffer.alloc(19, 0x45),
        Buffer.from([0x75, ...Buffer.alloc(40)]),
        (() => {
          const p = ipv4Packet('10.0.0.2', '10.0.0.1');
          p.writeUInt16BE(9999, 2); // length field lies
          return p;
        })(),
        (() => {
          const p = ipv4Packet('10.0.0.2', '10.0.0.1');
          p[0] = 0x44; // IHL below 5
          return p;
        })(),
        Buffer.alloc(70000, 0x45),
        ipv4Packet('10.0.0.2', '10.9.9.9'), // no peer routes it
      ];
      for (let i = 0; i < 2000; i++) {
        const m = Buffer.alloc(Math.floor(rnd() * 100));
        for (let j = 0; j < m.length; j++) m[j] = Math.floor(rnd() * 256);
        badPackets.push(m);
      }
      for (const p of badPackets) b.device.sendPacket(p);
      assert.equal(b.device.drops.get('outgoing-malformed') + b.device.drops.get('no-route') - out, badPackets.length);

      // Still alive: a fresh session, and traffic both ways over IPv4 and IPv6.
      a.device.getPeer(b.device.publicKey!)!.zeroKeyMaterial();
      b.device.getPeer(a.device.publicKey!)!.zeroKeyMaterial();
      net.clock.advance(10_000);
      a.received.length = 0;
      b.received.length = 0;
      a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'after the storm'));
      await net.run();
      b.device.sendPacket(ipv6Packet('fd00::2', 'fd00::1', 'and back'));
      await net.run();
      assert.equal(b.received.length, 1);
      assert.equal(b.received[0]!.subarray(28).toString(), 'after the storm');
      assert.equal(a.received.length, 1);
      assert.equal(a.received[0]!.subarray(48).toString(), 'and back');
    } finally {
      net.close();
    }
  });
});
