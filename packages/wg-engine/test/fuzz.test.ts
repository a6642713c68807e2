// Bad input never stops the engine. Over 100,000 random and mutated datagrams
// (built from real initiations, responses, cookie replies and transport
// messages) and 20,000 malformed outgoing packets: nothing throws, every
// datagram is accounted for exactly (one drop each, or one delivery), and the
// two engines still handshake and carry IPv4 and IPv6 both ways afterwards.
// Seeded: a failure prints its seed; FUZZ_SEED=<seed> replays it.
import assert from 'node:assert/strict';
import {
  MAX_MESSAGE_SIZE,
  MAX_QUEUED_HANDSHAKES,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_MIN_SIZE,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  UNDER_LOAD_AFTER_TIME_MS,
  createLogger,
  paddedLength,
  type DropCounters,
  type DropReason,
  type Peer,
} from '../src/index.js';
import { setMac1 } from './fixtures/forge.js';
import { FLOODER, cookieRetry, deliver, flood, takeOne, takeSent } from './fixtures/load.js';
import { MemoryNet, linkedPair, ipv4Packet, ipv6Packet, type Node } from './fixtures/net.js';
import { Prng, seedFrom } from './fixtures/prng.js';

const S = 1000;
const seed = seedFrom('FUZZ_SEED');
const AT = `(FUZZ_SEED=${seed})`;

interface Pair {
  a: Node;
  b: Node;
  pa: Peer;
  pb: Peer;
  /** Lines from the engines' catch-alls: a message that threw instead of being dropped by a check. */
  failures: string[];
}

describe('fuzz: bad input', function () {
  let net: MemoryNet;
  before(() => console.log(`      fuzz seed ${seed}; replay with FUZZ_SEED=${seed}`));
  afterEach(() => net?.close());

  function pair(): Pair {
    const failures: string[] = [];
    const logger = createLogger('debug', (line) => {
      if (/failed: /.test(line)) failures.push(line);
    });
    const p = linkedPair({ device: { logger } });
    net = p.net;
    return { ...p, failures };
  }

  /** Zeroes both sides' keys, lets Rekey-Timeout pass, and checks a new session carries IPv4 and IPv6 both ways. */
  async function handshakeAndTraffic(p: Pair): Promise<void> {
    const old = p.pa.current?.localIndex;
    p.pa.zeroKeyMaterial();
    p.pb.zeroKeyMaterial();
    net.queue = [];
    await net.advance(REKEY_TIMEOUT * S + REKEY_TIMEOUT_JITTER_MAX_MS + 1);
    const rxA = p.a.received.length;
    const rxB = p.b.received.length;
    p.a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'v4 a->b'));
    await net.run();
    p.b.device.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', 'v4 b->a'));
    await net.run();
    p.a.device.sendPacket(ipv6Packet('fd00::1', 'fd00::2', 'v6 a->b'));
    await net.run();
    p.b.device.sendPacket(ipv6Packet('fd00::2', 'fd00::1', 'v6 b->a'));
    await net.run();
    assert.ok(p.pa.current && p.pa.current.localIndex !== old, `a fresh session ${AT}`);
    assert.deepEqual(
      p.b.received.slice(rxB).map((x) => x.subarray(x[0]! >> 4 === 4 ? 28 : 48).toString()),
      ['v4 a->b', 'v6 a->b'],
      `B received both ${AT}`,
    );
    assert.deepEqual(
      p.a.received.slice(rxA).map((x) => x.subarray(x[0]! >> 4 === 4 ? 28 : 48).toString()),
      ['v4 b->a', 'v6 b->a'],
      `A received both ${AT}`,
    );
    assertNoFailures(p);
  }

  function assertNoFailures(p: Pair): void {
    const n = p.failures.length;
    assert.equal(n, 0, `${n} messages threw into the engines' catch-alls ${AT}, first: ${p.failures.slice(0, 3).join(' | ')}`);
  }

  function dropDeltas(now: DropCounters, before: Record<DropReason, number>): Partial<Record<DropReason, number>> {
    const out: Partial<Record<DropReason, number>> = {};
    for (const [r, v] of Object.entries(now.toJSON()) as [DropReason, number][]) if (v !== before[r]) out[r] = v - before[r];
    return out;
  }

  it('survives 100,000 random and mutated datagrams to the responder (and 20,000 to the initiator), accounting for each', async function () {
    const rng = new Prng(seed);
    const p = pair();
    const { a, b, pa, pb } = p;

    // A real exchange to mutate: a cookie round under load, the handshake, data both ways.
    const ex = await cookieRetry(net, a, b);
    flood(b.device);
    deliver(b, ex.retry);
    await net.run();
    for (const [from, pkt] of [
      [a, ipv4Packet('10.0.0.1', '10.0.0.2', 'capture 1')],
      [b, ipv4Packet('10.0.0.2', '10.0.0.1', 'capture 2')],
      [a, ipv6Packet('fd00::1', 'fd00::2', 'capture 3')],
      [b, ipv6Packet('fd00::2', 'fd00::1', 'capture 4')],
    ] as const) {
      from.device.sendPacket(pkt);
      await net.run();
    }
    const ofType = (t: number, pred: (m: Buffer) => boolean = () => true) =>
      net.wire
        .filter((d) => d.msg[0] === t && pred(d.msg))
        .slice(0, 3)
        .map((d) => d.msg);
    const corpus = [
      ...ofType(MESSAGE_INITIATION),
      ex.stranger,
      ...ofType(MESSAGE_RESPONSE),
      ex.reply.msg,
      net.wire.find((d) => d.msg[0] === MESSAGE_COOKIE_REPLY && d.to.equals(FLOODER.address, FLOODER.port))!.msg,
      ...ofType(MESSAGE_TRANSPORT, (m) => m.length === MESSAGE_TRANSPORT_MIN_SIZE),
      ...net.wire.filter((d) => d.msg[0] === MESSAGE_TRANSPORT && d.msg.length > MESSAGE_TRANSPORT_MIN_SIZE).map((d) => d.msg),
    ];
    assert.equal(a.received.length + b.received.length, 4, 'the capture run delivered its data');
    assert.equal(new Set(corpus.map((m) => m[0])).size, 4, 'the corpus holds all four message types');
    net.queue = [];
    net.wire.length = 0;

    interface Side {
      node: Node;
      other: Node;
      fed: number;
      accepted: string[];
      recent: Buffer[];
      before: Record<DropReason, number>;
      rxBefore: number;
    }
    const side = (node: Node, other: Node): Side => ({
      node,
      other,
      fed: 0,
      accepted: [],
      recent: [],
      before: node.device.drops.toJSON(),
      rxBefore: node.received.length,
    });
    const B = side(b, a);
    const A = side(a, b);
    const liveIndices = () => [pa.current!.localIndex, pb.current!.localIndex, pa.next?.localIndex ?? 0, pb.next?.localIndex ?? 0];
    let strategy = '';

    function feed(s: Side, msg: Buffer, address: string, port: number): void {
      try {
        s.node.device.receiveUdp(msg, address, port);
      } catch (err) {
        throw new Error(
          `receiveUdp threw on datagram ${s.fed} to ${s.node.endpoint.toString()} (${strategy}, ${msg.length} bytes, ` +
            `${msg.subarray(0, 24).toString('hex')}...) ${AT}: ${(err as Error).stack}`,
          { cause: err },
        );
      }
      s.fed++;
    }

    /** A spoofed source: mostly random IPv4, some IPv6, some the real peer's endpoint. */
    function source(s: Side): [string, number] {
      const r = rng.int(100);
      if (r < 15) return [s.other.endpoint.address, s.other.endpoint.port];
      if (r < 35) return [`2001:db8:${rng.int(0x10000).toString(16)}::${rng.int(0x10000).toString(16)}`, rng.range(1, 65535)];
      return [`198.18.${rng.int(256)}.${rng.int(256)}`, rng.range(1, 65535)];
    }

    /** A fresh, genuine data message from the other side: the one kind of datagram that must be accepted. */
    function genuine(s: Side): void {
      strategy = 'genuine';
      net.queue = [];
      const text = `genuine ${s.accepted.length}`;
      const fromA = s === B;
      s.other.device.sendPacket(fromA ? ipv4Packet('10.0.0.1', '10.0.0.2', text) : ipv6Packet('fd00::2', 'fd00::1', text));
      const d = takeOne(net, s.other, MESSAGE_TRANSPORT);
      s.recent = [...s.recent.slice(-7), d.msg];
      feed(s, Buffer.from(d.msg), d.from.address, d.from.port);
      s.accepted.push(text);
    }

    const TYPE_SIZE: Record<number, number> = {
      [MESSAGE_INITIATION]: MESSAGE_INITIATION_SIZE,
      [MESSAGE_RESPONSE]: MESSAGE_RESPONSE_SIZE,
      [MESSAGE_COOKIE_REPLY]: MESSAGE_COOKIE_REPLY_SIZE,
    };

    function mutant(s: Side): Buffer {
      const pool = s.recent.length && rng.chance(0.2) ? s.recent : corpus;
      const base = rng.pick(pool);
      const copy = () => Buffer.from(base);
      const r = rng.int(100);
      if (r < 12) {
        strategy = 'random';
        return rng.bytes(rng.int(2001));
      }
      if (r < 26) {
        // The right type word and (mostly) the right size, random inside; sometimes a live
        // receiver index or a valid mac1, so the checks past the first ones run too.
        strategy = 'typed';
        const type = rng.range(MESSAGE_INITIATION, MESSAGE_TRANSPORT);
        const exact = TYPE_SIZE[type] ?? MESSAGE_TRANSPORT_MIN_SIZE + 16 * rng.int(90);
        const msg = rng.bytes(rng.chance(0.7) ? exact : rng.range(4, 300));
        msg.writeUInt32LE(type, 0);
        const at = type === MESSAGE_RESPONSE ? 8 : 4;
        if (type !== MESSAGE_INITIATION && msg.length >= at + 4 && rng.chance(0.5)) msg.writeUInt32LE(rng.pick(liveIndices()), at);
        if (msg.length === TYPE_SIZE[type] && type !== MESSAGE_COOKIE_REPLY && rng.chance(0.3)) setMac1(msg, s.node.device.publicKey!);
        return msg;
      }
      if (r < 46) {
        strategy = 'flip';
        const msg = copy();
        for (let n = rng.range(1, 8); n > 0; n--) msg[rng.int(msg.length)]! ^= rng.range(1, 255);
        return msg;
      }
      if (r < 54) {
        strategy = 'truncate';
        return Buffer.from(base.subarray(0, rng.int(base.length)));
      }
      if (r < 62) {
        strategy = 'extend';
        return Buffer.concat([base, rng.bytes(rng.chance(0.5) ? 16 * rng.range(1, 4) : rng.range(1, 64))]);
      }
      if (r < 70) {
        strategy = 'type word';
        const msg = copy();
        if (rng.chance(0.5)) msg[0] = rng.int(256);
        else msg[rng.range(1, 3)] = rng.range(1, 255); // reserved bytes must be zero
        return msg;
      }
      if (r < 80) {
        strategy = 'replay';
        return copy();
      }
      if (r < 88) {
        strategy = 'splice';
        const msg = copy();
        rng.bytes(msg.length).copy(msg, rng.range(4, 16));
        return msg;
      }
      // Corrupt a handshake message and recompute mac1, as anyone knowing the public key can:
      // the message then reaches the Noise checks (or, under load, the cookie check).
      strategy = 'remac';
      const hs = corpus.filter((m) => m[0] === MESSAGE_INITIATION || m[0] === MESSAGE_RESPONSE);
      const msg = Buffer.from(rng.pick(hs));
      const end = msg[0] === MESSAGE_INITIATION ? 116 : 60;
      for (let n = rng.range(1, 4); n > 0; n--) msg[rng.range(4, end - 1)]! ^= rng.range(1, 255);
      return setMac1(msg, s.node.device.publicKey!);
    }

    const TOTAL_B = 100_000;
    const TOTAL_A = 20_000;
    let oversized = 0;
    let queueFull = 0;
    let burstDone = false;
    const started = performance.now();
    for (let chunk = 0; B.fed < TOTAL_B || A.fed < TOTAL_A; chunk++) {
      // Big chunks put the responder under load (cookie path); small ones leave it
      // below the threshold (the Noise checks). Either way no chunk overfills the queue.
      const size = chunk % 2 === 0 ? 3000 : 500;
      for (let i = 0; i < size && (B.fed < TOTAL_B || A.fed < TOTAL_A); i++) {
        const s = A.fed < TOTAL_A && (B.fed >= TOTAL_B || (A.fed + B.fed) % 6 === 5) ? A : B;
        if (s.fed % 250 === 249) {
          genuine(s);
        } else if (s.fed % 20_000 === 10_007) {
          strategy = 'oversized';
          feed(s, rng.bytes(MAX_MESSAGE_SIZE + 1 + rng.int(4000)), ...source(s));
          oversized++;
        } else {
          const msg = mutant(s);
          feed(s, msg, ...source(s));
        }
      }
      await Promise.all([a.device.settled(), b.device.settled()]);
      if (!burstDone && B.fed > TOTAL_B / 2) {
        // One burst past the queue's capacity: the excess is counted, not queued.
        burstDone = true;
        strategy = 'queue burst';
        for (let i = 0; i < MAX_QUEUED_HANDSHAKES + 20; i++) {
          const msg = rng.bytes(MESSAGE_INITIATION_SIZE);
          msg.writeUInt32LE(MESSAGE_INITIATION, 0);
          feed(B, msg, ...source(B));
        }
        queueFull = 20;
        await b.device.settled();
      }
      net.queue = [];
      net.wire.length = 0;
      if (a.device.underLoad || b.device.underLoad) net.clock.advance(UNDER_LOAD_AFTER_TIME_MS);
    }
    const elapsed = performance.now() - started;
    console.log(`      ${A.fed + B.fed} datagrams in ${Math.round(elapsed)} ms`);

    assert.ok(B.fed >= 100_000 && A.fed >= 20_000);
    for (const s of [B, A]) {
      const name = s === B ? 'responder' : 'initiator';
      const d = dropDeltas(s.node.device.drops, s.before);
      const dropped = Object.values(d).reduce((x, y) => x + y, 0);
      // Exact accounting: each datagram fed was either dropped under exactly one reason or accepted.
      assert.equal(
        dropped + s.accepted.length,
        s.fed,
        `${name}: ${dropped} drops + ${s.accepted.length} accepted != ${s.fed} fed ${AT} ${JSON.stringify(d)}`,
      );
      const payloads = s.node.received.slice(s.rxBefore).map((x) => x.subarray(x[0]! >> 4 === 4 ? 28 : 48).toString());
      assert.deepEqual(payloads, s.accepted, `${name}: exactly the genuine packets reached the TUN side, in order ${AT}`);
      assert.equal(
        d['oversized'] ?? 0,
        s === B ? oversized - Math.floor(A.fed / 20_000) : Math.floor(A.fed / 20_000),
        `${name} oversized ${AT}`,
      );
      const reached: DropReason[] =
        s === B
          ? [
              'malformed',
              'mac1',
              'cookie-required',
              'handshake-decrypt',
              'unknown-peer',
              'timestamp-replay',
              'unknown-receiver',
              'transport-decrypt',
              'replay',
            ]
          : ['malformed', 'mac1', 'handshake-decrypt', 'unknown-receiver', 'cookie-decrypt', 'transport-decrypt', 'replay'];
      for (const r of reached) assert.ok((d[r] ?? 0) > 0, `${name}: the fuzz reached the '${r}' check ${AT} ${JSON.stringify(d)}`);
      assert.equal(d['handshake-queue-full'] ?? 0, s === B ? queueFull : 0, `${name} queue full ${AT}`);
    }
    // Spoofed sources never moved a peer: only authenticated packets roam.
    assert.equal(pb.endpoint?.toString(), a.endpoint.toString(), AT);
    assert.equal(pa.endpoint?.toString(), b.endpoint.toString(), AT);
    assertNoFailures(p);

    await handshakeAndTraffic(p);
  });

  it('refuses malformed, unroutable and oversized outgoing packets without throwing, and sends the rest', async function () {
    const rng = new Prng(seed ^ 0x5e4d);
    const p = pair();
    const { a, b } = p;
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'first'));
    await net.run();
    assert.equal(b.received.length, 1);
    const dropsA = a.device.drops.toJSON();
    const dropsB = b.device.drops.toJSON();
    const rxB = b.received.length;

    const routed = () =>
      rng.chance(0.5)
        ? ipv4Packet('10.0.0.1', '10.0.0.2', rng.bytes(rng.int(1400)))
        : ipv6Packet('fd00::1', 'fd00::2', rng.bytes(rng.int(1400)));
    let fed = 0;
    let sent = 0;
    let malformed = 0;
    let unrouted = 0;
    let strategy = '';
    const feed = (pkt: Uint8Array) => {
      try {
        a.device.sendPacket(pkt);
      } catch (err) {
        throw new Error(`sendPacket threw on packet ${fed} (${strategy}, ${pkt.length} bytes) ${AT}: ${(err as Error).stack}`, {
          cause: err,
        });
      }
      fed++;
    };
    const forward = () => {
      for (const d of takeSent(net, a, MESSAGE_TRANSPORT)) {
        assert.ok(d.msg.length <= MAX_MESSAGE_SIZE, `a ${d.msg.length}-byte datagram left the engine ${AT}`);
        deliver(b, d);
      }
      net.queue = [];
    };

    for (let i = 0; i < 20_000; i++) {
      const r = rng.int(100);
      if (i % 2000 === 1999) {
        strategy = 'oversized';
        const big = [
          // Valid and routed, but its message would not fit in a datagram.
          ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.alloc(65535 - 28)),
          ipv6Packet('fd00::1', 'fd00::2', Buffer.alloc(65535 - 48)),
          ipv6Packet('fd00::1', 'fd00::2', Buffer.alloc(65535 - 8)),
          rng.bytes(65536 + rng.int(10_000)),
        ];
        for (const pkt of big) feed(pkt);
        malformed += big.length;
      } else if (r < 5) {
        strategy = 'empty';
        feed(new Uint8Array(0));
        malformed++;
      } else if (r < 20) {
        strategy = 'random';
        feed(rng.bytes(rng.range(1, 2000)));
      } else if (r < 32) {
        strategy = 'truncated';
        const pkt = routed();
        feed(pkt.subarray(0, rng.range(1, pkt.length - 1)));
        malformed++;
      } else if (r < 42) {
        strategy = 'version';
        const pkt = routed();
        pkt[0] = (rng.pick([0, 1, 2, 3, 5, 7, 8, 9, 15]) << 4) | (pkt[0]! & 0x0f);
        feed(pkt);
        malformed++;
      } else if (r < 54) {
        strategy = 'length lies';
        const pkt = routed();
        let delta = 0;
        while (delta === 0) delta = rng.range(-Math.min(pkt.length - 40, 200), 200);
        if (pkt[0]! >> 4 === 4) pkt.writeUInt16BE(pkt.length + delta, 2);
        else pkt.writeUInt16BE(pkt.length - 40 + delta, 4);
        feed(pkt);
        malformed++;
      } else if (r < 60) {
        strategy = 'header length';
        const pkt = ipv4Packet('10.0.0.1', '10.0.0.2', rng.bytes(rng.int(100)));
        pkt[0] = 0x40 | rng.int(5);
        feed(pkt);
        malformed++;
      } else if (r < 75) {
        strategy = 'no route';
        feed(
          rng.chance(0.5)
            ? ipv4Packet('10.0.0.1', `10.9.${rng.int(256)}.${rng.int(256)}`, rng.bytes(rng.int(200)))
            : ipv6Packet('fd00::1', `fd00::${rng.range(3, 0xffff).toString(16)}`, rng.bytes(rng.int(200))),
        );
        unrouted++;
      } else {
        strategy = 'routed';
        feed(routed());
        sent++;
      }
      if (i % 1000 === 999) forward();
    }
    forward();

    const dA = dropDeltas(a.device.drops, dropsA);
    assert.equal((dA['outgoing-malformed'] ?? 0) + (dA['no-route'] ?? 0), fed - sent, `${AT} ${JSON.stringify(dA)}`);
    assert.deepEqual(Object.keys(dA).sort(), ['no-route', 'outgoing-malformed'], `${AT} ${JSON.stringify(dA)}`);
    assert.ok(dA['outgoing-malformed']! >= malformed, AT);
    assert.ok(dA['no-route']! >= unrouted, AT);
    assert.equal(b.received.length - rxB, sent, `every routed packet arrived ${AT}`);
    assert.deepEqual(dropDeltas(b.device.drops, dropsB), {}, AT);

    await handshakeAndTraffic(p);
  });

  it('refuses every message type with a non-zero reserved byte, and takes the same message without', async () => {
    const { a, b, pa } = pair();
    const variants = (msg: Buffer) =>
      [1, 2, 3].map((i) => {
        const v = Buffer.from(msg);
        v[i] = 1 << i;
        return v;
      });
    const both = (to: Node, from: Node, msg: Buffer) => {
      for (const v of variants(msg)) to.device.receiveUdp(v, from.endpoint.address, from.endpoint.port);
      to.device.receiveUdp(Buffer.from(msg), from.endpoint.address, from.endpoint.port);
    };

    a.device.initiateHandshake(pa);
    const init = takeOne(net, a, MESSAGE_INITIATION).msg;
    // The transport header is not authenticated: only the reserved-byte check can refuse these.
    const reply = b.device.cookieChecker.createReply(init, a.endpoint);
    both(a, b, reply);
    await a.device.settled();
    assert.ok(pa.cookies.hasFreshCookie, 'the clean cookie reply was taken');
    both(b, a, init);
    await b.device.settled();
    const response = takeOne(net, b, MESSAGE_RESPONSE).msg;
    both(a, b, response);
    await a.device.settled();
    assert.ok(pa.current, 'the clean response completed the handshake');
    net.queue = [];
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'clean'));
    const data = takeOne(net, a, MESSAGE_TRANSPORT).msg;
    both(b, a, data);
    assert.equal(b.received.at(-1)?.subarray(28).toString(), 'clean');
    assert.equal(a.device.drops.get('malformed'), 6);
    assert.equal(a.device.drops.total(), 6);
    assert.equal(b.device.drops.get('malformed'), 6);
    assert.equal(b.device.drops.total(), 6);
  });

  it('sends the largest packet whose message fits in a datagram, and refuses one byte more', async () => {
    const { a, b } = pair();
    let largest = MAX_MESSAGE_SIZE;
    while (MESSAGE_TRANSPORT_MIN_SIZE + paddedLength(largest, a.device.mtu) > MAX_MESSAGE_SIZE) largest--;
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.alloc(largest - 28, 7)));
    await net.run();
    assert.equal(b.received.at(-1)?.length, largest);
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.alloc(largest + 1 - 28, 7)));
    assert.equal(a.device.drops.get('outgoing-malformed'), 1);
    assert.deepEqual(net.queue, []);
    assert.equal(b.device.drops.get('oversized'), 0);
  });
});
