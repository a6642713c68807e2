// Every protocol timer driven by the fake clock, checked against the Linux
// kernel's timers.c / send.c / receive.c. Datagrams carry their exact send
// time (Datagram.at), so intervals are asserted to the millisecond whatever
// step the network is advanced in.
import assert from 'node:assert/strict';
import {
  Handshake,
  HandshakeState,
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_MIN_SIZE,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  createInitiation,
  type Keypair,
  type Peer,
} from '../src/index.js';
import { MemoryNet, linkedPair, type LinkedPair, ipv4Packet, type Datagram, type Node, type SentDatagram } from './fixtures/net.js';

const S = 1000;
const REKEY_TIMEOUT_MS = REKEY_TIMEOUT * S;
const KEEPALIVE_MS = KEEPALIVE_TIMEOUT * S;
const ZERO_AFTER_MS = REJECT_AFTER_TIME * 3 * S;
// The kernel retries MAX_TIMER_HANDSHAKES + 1 times after the first initiation and
// gives up at the next expiry ("did not complete after MAX_TIMER_HANDSHAKES + 2 attempts").
const TOTAL_ATTEMPTS = MAX_TIMER_HANDSHAKES + 2;

type Kind = 'initiation' | 'response' | 'cookie' | 'keepalive' | 'data';

function kindOf(d: Datagram): Kind {
  switch (d.msg[0]) {
    case MESSAGE_INITIATION:
      return 'initiation';
    case MESSAGE_RESPONSE:
      return 'response';
    case MESSAGE_TRANSPORT:
      return d.msg.length === MESSAGE_TRANSPORT_MIN_SIZE ? 'keepalive' : 'data';
    default:
      return 'cookie';
  }
}

const receiverOf = (d: Datagram) => d.msg.readUInt32LE(4);
const counterOf = (d: Datagram) => d.msg.readBigUInt64LE(8);
const payloadOf = (p: Buffer) => p.subarray(28).toString();
const slotOf = (kp: Keypair<Peer> | null) => (kp ? `keypair in slot ${kp.slot}` : 'null');

describe('timers (fake clock, kernel timers.c semantics)', function () {
  let net: MemoryNet;
  afterEach(() => net?.close());

  function pair(): LinkedPair {
    const p = linkedPair();
    net = p.net;
    return p;
  }

  /** A session A initiated, confirmed to B by A's keepalive; nothing else in flight and no timer but zeroing armed. */
  async function session(): Promise<LinkedPair & { t0: number }> {
    const p = pair();
    p.a.device.initiateHandshake(p.pa);
    await net.run();
    assert.ok(p.pa.current?.isInitiator, 'A holds an initiator keypair');
    assert.ok(p.pb.current && !p.pb.current.isInitiator, 'B holds the confirmed responder keypair');
    return { ...p, t0: net.clock.now() };
  }

  const isFrom = (n: Node) => (d: Datagram) => d.from.equals(n.endpoint.address, n.endpoint.port);

  /** What n sent of one kind, from time `since` on. */
  function sent(n: Node, kind: Kind, since = -Infinity): SentDatagram[] {
    const from = isFrom(n);
    return net.wire.filter((d) => from(d) && kindOf(d) === kind && d.at >= since);
  }

  const dropFrom = (n: Node, kind?: Kind) => {
    const from = isFrom(n);
    net.filter = (d) => !(from(d) && (kind === undefined || kindOf(d) === kind));
  };

  const toB = (tag: string) => ipv4Packet('10.0.0.1', '10.0.0.2', tag);
  const toA = (tag: string) => ipv4Packet('10.0.0.2', '10.0.0.1', tag);

  function assertJitteredGap(gap: number, base: number, what: string): void {
    assert.ok(
      gap >= base && gap < base + REKEY_TIMEOUT_JITTER_MAX_MS,
      `${what}: ${gap} ms is outside [${base}, ${base + REKEY_TIMEOUT_JITTER_MAX_MS})`,
    );
  }

  // Keypairs are compared by identity with a short message: a failing deep diff of one
  // would print the whole device (its SharedArrayBuffer included).
  function same(x: Keypair<Peer> | null, y: Keypair<Peer> | null, what: string): void {
    assert.ok(x === y, `${what}: expected ${slotOf(y)}, got ${slotOf(x)}`);
  }
  function differs(x: Keypair<Peer> | null, y: Keypair<Peer> | null, what: string): void {
    assert.ok(x !== y, `${what}: still ${slotOf(x)}`);
  }

  function assertZeroed(n: Node, slots: number[]): void {
    const kp = n.device.keypairs;
    for (const s of slots) {
      assert.equal(kp.isLive(s), false, `slot ${s} still live`);
      assert.ok(
        kp.sendKey(s).every((x) => x === 0),
        `slot ${s} send key not zeroed`,
      );
      assert.ok(
        kp.receiveKey(s).every((x) => x === 0),
        `slot ${s} receive key not zeroed`,
      );
    }
    assert.equal(kp.used, 0);
    assert.equal(n.device.index.size, 0, 'no receiver index left');
  }

  describe('Rekey-After-Time', () => {
    it('the initiator sending at 120 s rekeys; traffic moves to the new keypair; the old one stays as previous', async () => {
      const { a, b, pa, pb, t0 } = await session();
      const oldA = pa.current!;
      const oldB = pb.current!;

      await net.advanceTo(t0 + REKEY_AFTER_TIME * S - 1, 1000);
      a.device.sendPacket(toB('119.999'));
      await net.run();
      assert.equal(sent(a, 'initiation', t0 + 1).length, 0, 'no rekey before Rekey-After-Time');

      await net.advanceTo(t0 + REKEY_AFTER_TIME * S);
      // B's packet on the old keypair is still in flight while the keys change.
      b.device.sendPacket(toA('in flight'));
      const inFlight = net.queue.splice(0);
      const mark = net.wire.length;
      a.device.sendPacket(toB('120'));
      const now = net.wire.slice(mark);
      assert.deepEqual(now.map(kindOf), ['data', 'initiation'], 'the packet goes out on the old keypair, then the rekey starts');
      assert.equal(receiverOf(now[0]!), oldA.remoteIndex);

      await net.run();
      differs(pa.current, oldA, 'A current');
      assert.ok(pa.current!.isInitiator, 'A initiated the new session');
      same(pa.previous, oldA, 'the initiator keeps the old keypair as previous');
      differs(pb.current, oldB, 'B moved on once A confirmed the new keypair');
      same(pb.previous, oldB, 'B previous');
      assert.deepEqual(b.received.map(payloadOf), ['119.999', '120']);

      for (const d of inFlight) net.deliver(d);
      assert.deepEqual(a.received.map(payloadOf), ['in flight'], 'a packet on the previous keypair is still accepted');

      a.device.sendPacket(toB('after'));
      b.device.sendPacket(toA('reply'));
      const [ab, ba] = net.queue;
      assert.equal(receiverOf(ab!), pb.current!.localIndex);
      assert.equal(receiverOf(ba!), pa.current!.localIndex);
      await net.run();
      assert.equal(payloadOf(b.received.at(-1)!), 'after');
      assert.equal(payloadOf(a.received.at(-1)!), 'reply');
    });

    it('the responder never rekeys on time as a sender; it starts a handshake only when its keypair reaches Reject-After-Time', async () => {
      const { a, b, pa, pb, t0 } = await session();
      const kpB = pb.current!;
      dropFrom(a, 'initiation'); // A's own rekey never completes, so B keeps its aging keypair
      let nb = 0;
      for (let t = REKEY_AFTER_TIME * S; t < REJECT_AFTER_TIME * S; t += 5 * S) {
        await net.advanceTo(t0 + t, 1000);
        a.device.sendPacket(toB(`a${t}`));
        b.device.sendPacket(toA(`b${t}`));
        nb++;
        await net.run();
      }
      await net.advanceTo(t0 + REJECT_AFTER_TIME * S - 1, 1000);
      b.device.sendPacket(toA('last'));
      nb++;
      await net.run();
      assert.ok(sent(a, 'initiation', t0 + 1).length > 0, 'the initiator did try to rekey on time');
      assert.equal(sent(b, 'initiation').length, 0, 'the responder sent no initiation while its keypair was 120-180 s old');
      same(pb.current, kpB, 'B current');
      assert.equal(a.received.length, nb);

      await net.advanceTo(t0 + REJECT_AFTER_TIME * S);
      const mark = net.wire.length;
      b.device.sendPacket(toA('expired'));
      assert.deepEqual(net.wire.slice(mark).map(kindOf), ['initiation'], 'no data on the expired keypair, a handshake instead');
      assert.equal(pb.stagedCount, 1);
      await net.run();
      assert.ok(pb.current!.isInitiator, 'B is the initiator of the new session');
      assert.equal(payloadOf(a.received.at(-1)!), 'expired');
      assert.equal(pa.current!.localIndex, pb.current!.remoteIndex);
    });
  });

  describe('Reject-After-Time', () => {
    it('a keypair 180 s old is not used to send: the packet is staged and a handshake starts', async () => {
      const { a, b, pa, t0 } = await session();
      const old = pa.current!;
      await net.advanceTo(t0 + REJECT_AFTER_TIME * S, 5000);
      same(pa.current, old, 'A current');
      const mark = net.wire.length;
      a.device.sendPacket(toB('late'));
      assert.deepEqual(net.wire.slice(mark).map(kindOf), ['initiation']);
      assert.equal(pa.stagedCount, 1);
      await net.run();
      differs(pa.current, old, 'A current');
      const data = sent(a, 'data');
      assert.equal(data.length, 1);
      assert.equal(receiverOf(data[0]!), pa.current!.remoteIndex);
      assert.equal(counterOf(data[0]!), 0n, 'the staged packet opened the new keypair');
      assert.deepEqual(b.received.map(payloadOf), ['late']);
    });

    it('data arriving on a keypair 180 s old is dropped as key-expired', async () => {
      const { a, b, t0 } = await session();
      await net.advanceTo(t0 + REJECT_AFTER_TIME * S - 2, 5000);
      b.device.sendPacket(toA('in time'));
      b.device.sendPacket(toA('too late'));
      const [inTime, tooLate] = net.queue.splice(0);
      assert.equal(kindOf(tooLate!), 'data');

      net.clock.advance(1);
      net.deliver(inTime!);
      assert.deepEqual(a.received.map(payloadOf), ['in time']);
      net.clock.advance(1);
      net.deliver(tooLate!);
      assert.deepEqual(a.received.map(payloadOf), ['in time']);
      assert.equal(a.device.drops.get('key-expired'), 1);
    });
  });

  describe('last-minute rekey on receive', () => {
    const LAST_MINUTE_MS = (REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) * S;

    it('the initiator receiving data at 165 s starts one handshake, not one per packet', async () => {
      const { a, b, pa, t0 } = await session();
      const old = pa.current!;
      dropFrom(a, 'initiation');

      await net.advanceTo(t0 + LAST_MINUTE_MS - 1, 5000);
      b.device.sendPacket(toA('164.999'));
      await net.run();
      assert.equal(sent(a, 'initiation', t0 + 1).length, 0);
      assert.equal(pa.sentLastMinuteHandshake, false);

      await net.advanceTo(t0 + LAST_MINUTE_MS);
      b.device.sendPacket(toA('165'));
      await net.run();
      const first = sent(a, 'initiation', t0 + 1);
      assert.deepEqual(
        first.map((d) => d.at),
        [t0 + LAST_MINUTE_MS],
      );
      assert.equal(pa.sentLastMinuteHandshake, true);

      // The retransmit timer retries it (attempt 1) ...
      await net.advanceTo(t0 + LAST_MINUTE_MS + REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS, 10);
      assert.equal(sent(a, 'initiation', t0 + 1).length, 2);
      assert.equal(pa.handshakeAttempts, 1);
      // ... and more data does not start the handshake over, which would reset the attempts.
      b.device.sendPacket(toA('later'));
      await net.run();
      assert.equal(pa.handshakeAttempts, 1);
      assert.equal(sent(a, 'initiation', t0 + 1).length, 2);

      // The responder never does this: B receives data on its 166 s old keypair and stays quiet.
      a.device.sendPacket(toB('to the responder'));
      await net.run();
      assert.equal(payloadOf(b.received.at(-1)!), 'to the responder');
      assert.equal(sent(b, 'initiation').length, 0);

      // Let the next retry through: the new session clears the flag.
      net.filter = () => true;
      await net.advanceTo(t0 + LAST_MINUTE_MS + 3 * (REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS));
      differs(pa.current, old, 'A current');
      same(pa.previous, old, 'A previous');
      assert.equal(pa.sentLastMinuteHandshake, false);
    });
  });

  describe('Keepalive-Timeout', () => {
    it('B (the responder) answers data it cannot reply to with one 32-byte keepalive after 10 s; keepalives get no answer', async () => {
      const { a, pb, t0 } = await session();
      assert.equal(pb.current!.isInitiator, false);
      await net.advanceTo(t0 + S);
      const T = net.clock.now();
      a.device.sendPacket(toB('ping'));
      await net.run();
      await net.advanceTo(T + 60 * S + KEEPALIVE_MS, 10);
      const after = net.wire.filter((d) => d.at >= T);
      assert.deepEqual(
        after.map((d) => [d.from.port, kindOf(d), d.at - T]),
        [
          [51001, 'data', 0],
          [51002, 'keepalive', KEEPALIVE_MS],
        ],
        'one keepalive from B after exactly 10 s, none from A in answer, nothing else in 70 s',
      );
      assert.equal(after[1]!.msg.length, 32);
      assert.equal(receiverOf(after[1]!), pb.current!.remoteIndex);
    });

    it('more data while the keepalive is pending earns exactly one more keepalive 10 s later', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      a.device.sendPacket(toB('1'));
      await net.run();
      await net.advanceTo(T + 5 * S, 10);
      a.device.sendPacket(toB('2'));
      await net.run();
      await net.advanceTo(T + 60 * S, 10);
      assert.deepEqual(
        sent(b, 'keepalive', T).map((d) => d.at - T),
        [KEEPALIVE_MS, 2 * KEEPALIVE_MS],
      );
      assert.equal(sent(a, 'keepalive', T).length, 0);
      assert.equal(sent(a, 'initiation', T).length, 0, "B's keepalive stopped A's new-handshake timer");
    });

    it('sending data within 10 s replaces the keepalive; the other side then owes one', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      a.device.sendPacket(toB('question'));
      await net.run();
      await net.advanceTo(T + 3 * S, 10);
      b.device.sendPacket(toA('answer'));
      await net.run();
      await net.advanceTo(T + 60 * S, 10);
      const after = net.wire.filter((d) => d.at >= T);
      assert.deepEqual(
        after.map((d) => [d.from.port, kindOf(d), d.at - T]),
        [
          [51001, 'data', 0],
          [51002, 'data', 3 * S],
          [51001, 'keepalive', 3 * S + KEEPALIVE_MS],
        ],
      );
    });

    it('data dropped for its inner source still earns a keepalive, as any authenticated data does in the kernel', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      // A routes this to B, but B does not accept 10.9.9.9 from A.
      a.device.sendPacket(ipv4Packet('10.9.9.9', '10.0.0.2', 'spoofed'));
      await net.run();
      await net.advanceTo(T + 30 * S, 10);
      assert.equal(b.device.drops.get('allowed-ips'), 1);
      assert.equal(b.received.length, 0);
      assert.deepEqual(
        sent(b, 'keepalive', T).map((d) => d.at - T),
        [KEEPALIVE_MS],
      );
      assert.equal(sent(a, 'initiation', T).length, 0, 'A, having heard back, does not start a new handshake');
    });

    it('no ping-pong: 60 s of persistent keepalives from A are never answered by B', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      a.device.setPeer(b.device.publicKey!, { persistentKeepalive: 10 });
      await net.advanceTo(T + 60 * S, 100);
      assert.deepEqual(
        net.wire.filter((d) => d.at >= T).map((d) => [d.from.port, kindOf(d), d.at - T]),
        [0, 10, 20, 30, 40, 50, 60].map((s) => [51001, 'keepalive', s * S]),
      );
    });
  });

  describe('handshake retransmission', () => {
    it(`retries every 5 s plus jitter, gives up after ${TOTAL_ATTEMPTS} attempts, drops the staged packets and zeroes the handshake 540 s later`, async () => {
      const { a, b, pa, pb } = pair();
      dropFrom(b);
      const t0 = net.clock.now();
      for (let i = 0; i < 3; i++) a.device.sendPacket(toB(`p${i}`));
      assert.equal(pa.stagedCount, 3);

      while (sent(a, 'initiation').length < TOTAL_ATTEMPTS) {
        assert.ok(net.clock.now() < t0 + 120 * S, 'the retries took too long');
        await net.advance(S, 100);
      }
      const inits = sent(a, 'initiation');
      assert.equal(inits[0]!.at, t0);
      const gaps = inits.slice(1).map((d, i) => d.at - inits[i]!.at);
      gaps.forEach((g, i) => assertJitteredGap(g, REKEY_TIMEOUT_MS, `gap ${i + 1}`));
      assert.ok(new Set(gaps).size > 1, `the retries are jittered, not all ${gaps[0]} ms apart`);

      // The attempt after the last initiation gives up instead of sending.
      const last = inits.at(-1)!.at;
      await net.advanceTo(last + REKEY_TIMEOUT_MS - 1, 100);
      assert.equal(pa.stagedCount, 3);
      await net.advanceTo(last + REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS, 10);
      assert.equal(pa.stagedCount, 0, 'staged packets dropped on giving up');
      assert.equal(a.device.drops.get('handshake-timeout'), 3);
      assert.equal(b.received.length, 0);

      // B, the responder, answered every attempt; its last unconfirmed keypair is zeroed 540 s after the last answer.
      const lastResponse = sent(b, 'response').at(-1)!.at;
      assert.equal(sent(b, 'response').length, TOTAL_ATTEMPTS);
      assert.ok(pb.next && !pb.current && !pb.previous, 'B holds only its unconfirmed keypair');
      const slotB = pb.next.slot;
      await net.advanceTo(lastResponse + ZERO_AFTER_MS - 1, 5000);
      assert.equal(b.device.keypairs.used, 1);
      await net.advanceTo(lastResponse + ZERO_AFTER_MS, 100);
      same(pb.next, null, 'B next');
      assertZeroed(b, [slotB]);

      // A's half-done handshake is forgotten 540 s after giving up (the zeroing timer was not armed before).
      await net.advanceTo(last + REKEY_TIMEOUT_MS + ZERO_AFTER_MS - 1, 5000);
      assert.equal(pa.handshake.state, HandshakeState.InitiationCreated);
      await net.advanceTo(last + REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS + ZERO_AFTER_MS, 100);
      assert.equal(pa.handshake.state, HandshakeState.Zeroed);
      assert.equal(a.device.index.size, 0);
      assert.equal(sent(a, 'initiation').length, TOTAL_ATTEMPTS, 'no initiation after giving up');
    });

    it("keeps a session's zeroing deadline while it retries: keys go 540 s after the session, not after giving up", async () => {
      const { a, b, pa, t0 } = await session();
      const slot = pa.current!.slot;
      dropFrom(b);
      await net.advanceTo(t0 + 200 * S, 5000);
      a.device.sendPacket(toB('expired keypair'));
      assert.equal(pa.stagedCount, 1);
      // Retries run out around t0 + 300 s; 540 s after that would be t0 + 840 s.
      await net.advanceTo(t0 + ZERO_AFTER_MS - 1, 1000);
      assert.equal(sent(a, 'initiation', t0 + 1).length, TOTAL_ATTEMPTS);
      assert.equal(pa.stagedCount, 0);
      assert.ok(pa.current, 'the session keypair is still there');
      assert.equal(a.device.keypairs.used, 1);
      await net.advanceTo(t0 + ZERO_AFTER_MS);
      assert.ok(!pa.current && !pa.previous && !pa.next, 'A still holds a keypair');
      assertZeroed(a, [slot]);
    });
  });

  describe('new-handshake timer', () => {
    it('data sent with no reply for 15 s (+ jitter) starts a handshake; more data does not push the deadline', async () => {
      const { a, b, pa } = await session();
      dropFrom(b, 'keepalive'); // B never answers data, but its handshake responses get through
      const delays: number[] = [];
      for (let round = 0; round < 6; round++) {
        const T = net.clock.now() + S;
        const kp = pa.current;
        await net.advanceTo(T);
        for (const dt of [0, 5, 10]) {
          await net.advanceTo(T + dt * S);
          a.device.sendPacket(toB(`${round}.${dt}`));
          await net.run();
        }
        await net.advanceTo(T + 16 * S, 100);
        const inits = sent(a, 'initiation', T);
        assert.equal(inits.length, 1, `round ${round}`);
        delays.push(inits[0]!.at - T);
        differs(pa.current, kp, `round ${round}: the new handshake completed`);
      }
      delays.forEach((d, i) => assertJitteredGap(d, (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * S, `round ${i}`));
      assert.ok(new Set(delays).size > 1, `the delay is jittered, not always ${delays[0]} ms`);
    });

    it('any authenticated reply within 15 s cancels it', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      a.device.sendPacket(toB('1'));
      await net.run();
      await net.advanceTo(T + 60 * S, 100);
      assert.deepEqual(
        sent(b, 'keepalive', T).map((d) => d.at - T),
        [KEEPALIVE_MS],
      );
      assert.equal(net.wire.filter((d) => kindOf(d) === 'initiation' && d.at >= T).length, 0);
    });
  });

  describe('persistent keepalive', () => {
    it('sends a keepalive after every N s without authenticated traffic', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      a.device.setPeer(b.device.publicKey!, { persistentKeepalive: 15 });
      await net.advanceTo(T + 60 * S, 100);
      assert.deepEqual(
        sent(a, 'keepalive', T).map((d) => d.at - T),
        [0, 15, 30, 45, 60].map((s) => s * S),
      );
      // Every authenticated packet restarts the interval: B's data at +62 s moves it to +77 s,
      // A's passive keepalive at +72 s moves it to +87 s (not the +75 s it was armed for).
      await net.advanceTo(T + 62 * S, 100);
      b.device.sendPacket(toA('data'));
      await net.run();
      await net.advanceTo(T + 95 * S, 100);
      assert.deepEqual(
        sent(a, 'keepalive', T + 61 * S).map((d) => d.at - T),
        [72, 87].map((s) => s * S),
      );
      assert.equal(sent(b, 'keepalive', T).length, 0);
    });

    it('set on an up device it sends one at once, which brings up the handshake; 0 turns it off', async () => {
      const { a, b, pa, pb } = pair();
      const T = net.clock.now();
      a.device.setPeer(b.device.publicKey!, { persistentKeepalive: 10 });
      assert.deepEqual(net.queue.map(kindOf), ['initiation']);
      await net.run();
      assert.deepEqual(net.wire.map(kindOf), ['initiation', 'response', 'keepalive']);
      assert.ok(pa.current && pb.current, 'the keepalive confirmed the session to B');

      await net.advanceTo(T + 30 * S, 100);
      assert.deepEqual(
        sent(a, 'keepalive').map((d) => d.at - T),
        [0, 10, 20, 30].map((s) => s * S),
      );
      a.device.setPeer(b.device.publicKey!, { persistentKeepalive: 0 });
      const off = net.clock.now();
      await net.advanceTo(off + 120 * S, 1000);
      assert.equal(net.wire.filter((d) => d.at > off).length, 0);
    });

    it('configured on a down device it waits for up(), then sends at once', async () => {
      const { a, b, pa } = pair();
      a.device.down();
      a.device.setPeer(b.device.publicKey!, { persistentKeepalive: 15 });
      assert.equal(net.queue.length, 0);
      a.device.up();
      await net.run();
      assert.deepEqual(net.wire.map(kindOf), ['initiation', 'response', 'keepalive']);
      assert.ok(pa.current, 'A has a session');
    });
  });

  describe('zeroing', () => {
    it('540 s after the last session every keypair on both sides, previous included, is zeroed', async () => {
      const { a, b, pa, pb, t0 } = await session();
      await net.advanceTo(t0 + REKEY_AFTER_TIME * S, 5000);
      a.device.sendPacket(toB('rekey'));
      await net.run();
      const t1 = net.clock.now();
      assert.ok(pa.previous && pa.current && pb.previous && pb.current, 'both sides hold previous and current');
      const slotsA = [pa.previous.slot, pa.current.slot];
      const slotsB = [pb.previous.slot, pb.current.slot];

      await net.advanceTo(t1 + ZERO_AFTER_MS - 1, 5000);
      assert.equal(a.device.keypairs.used, 2);
      assert.equal(b.device.keypairs.used, 2);
      assert.ok(
        slotsA.every((s) => a.device.keypairs.sendKey(s).some((x) => x !== 0)),
        'keys still in place',
      );
      await net.advanceTo(t1 + ZERO_AFTER_MS);
      for (const p of [pa, pb]) assert.ok(!p.previous && !p.current && !p.next, 'a keypair survived');
      assertZeroed(a, slotsA);
      assertZeroed(b, slotsB);

      // A later packet simply makes a new session.
      a.device.sendPacket(toB('again'));
      await net.run();
      assert.equal(payloadOf(b.received.at(-1)!), 'again');
    });
  });

  describe('Rekey-After-Messages and Reject-After-Messages', () => {
    it('sending past Rekey-After-Messages starts a handshake, on the responder as on the initiator', async () => {
      const { a, b, pa, pb, t0 } = await session();
      await net.advanceTo(t0 + 10 * S, 1000);
      const kp = pa.current!;
      a.device.keypairs.setSendCounter(kp.slot, REKEY_AFTER_MESSAGES - 1n);
      a.device.sendPacket(toB('at the limit'));
      assert.deepEqual(
        net.queue.map((d) => [kindOf(d), counterOf(d)]),
        [['data', REKEY_AFTER_MESSAGES - 1n]],
      );
      await net.run();
      a.device.sendPacket(toB('past it'));
      assert.deepEqual(net.queue.map(kindOf), ['data', 'initiation']);
      assert.equal(counterOf(net.queue[0]!), REKEY_AFTER_MESSAGES);
      await net.run();
      differs(pa.current, kp, 'A current');
      assert.deepEqual(b.received.map(payloadOf), ['at the limit', 'past it']);

      await net.advanceTo(net.clock.now() + REKEY_TIMEOUT_MS, 1000);
      const kpB = pb.current!;
      assert.equal(kpB.isInitiator, false);
      b.device.keypairs.setSendCounter(kpB.slot, REKEY_AFTER_MESSAGES);
      b.device.sendPacket(toA('from the responder'));
      assert.deepEqual(net.queue.map(kindOf), ['data', 'initiation']);
      await net.run();
      assert.ok(pb.current!.isInitiator, 'B initiated the new session');
    });

    it('an exhausted keypair is never used: the packet is staged, a handshake starts, the counter stays pinned', async () => {
      const { a, b, pa, t0 } = await session();
      await net.advanceTo(t0 + 10 * S, 1000);
      const kp = pa.current!;
      a.device.keypairs.setSendCounter(kp.slot, REJECT_AFTER_MESSAGES);
      const mark = net.wire.length;
      a.device.sendPacket(toB('waits'));
      assert.deepEqual(net.wire.slice(mark).map(kindOf), ['initiation']);
      assert.equal(pa.stagedCount, 1);
      assert.equal(kp.sendCounter, REJECT_AFTER_MESSAGES);
      await net.run();
      differs(pa.current, kp, 'A current');
      const data = sent(a, 'data');
      assert.deepEqual(
        data.map((d) => [receiverOf(d), counterOf(d)]),
        [[pa.current!.remoteIndex, 0n]],
      );
      assert.deepEqual(b.received.map(payloadOf), ['waits']);
    });

    it('the last nonces of a keypair go out once each and a staged batch waits for the next one: no counter wraps', async () => {
      const { a, b, pa } = pair();
      // Exhaust the keypair the moment it exists, before the staged batch is sent on it.
      a.device.once('handshake-complete', (p) => a.device.keypairs.setSendCounter(p.current!.slot, REJECT_AFTER_MESSAGES - 2n));
      for (let i = 0; i < 5; i++) a.device.sendPacket(toB(`s${i}`));
      await net.run();
      const first = pa.current!;
      assert.deepEqual(sent(a, 'data').map(counterOf), [REJECT_AFTER_MESSAGES - 2n, REJECT_AFTER_MESSAGES - 1n]);
      assert.equal(first.sendCounter, REJECT_AFTER_MESSAGES, 'pinned at the limit, not wrapped');
      assert.equal(pa.stagedCount, 3, 'the rest wait (a new initiation is rate-limited right after the last)');
      assert.deepEqual(b.received.map(payloadOf), ['s0', 's1']);

      await net.advanceTo(net.clock.now() + REKEY_TIMEOUT_MS, 100);
      a.device.sendPacket(toB('s5'));
      await net.run();
      differs(pa.current, first, 'A current');
      assert.deepEqual(b.received.map(payloadOf), ['s0', 's1', 's2', 's3', 's4', 's5']);
      const nonces = sent(a, 'data').map((d) => `${receiverOf(d)}:${counterOf(d)}`);
      assert.equal(new Set(nonces).size, nonces.length, 'no (keypair, counter) pair repeats');
      assert.ok(sent(a, 'data').every((d) => counterOf(d) < REJECT_AFTER_MESSAGES));
      assert.deepEqual(
        sent(a, 'data')
          .filter((d) => receiverOf(d) === pa.current!.remoteIndex)
          .map(counterOf),
        [0n, 1n, 2n, 3n],
      );
    });
  });

  describe('initiation limits', () => {
    it('many packets without a session start one initiation per Rekey-Timeout', async () => {
      const { a, b, pa } = pair();
      dropFrom(b);
      const t0 = net.clock.now();
      for (let i = 0; i < 50; i++) {
        a.device.sendPacket(toB(`${i}`));
        await net.advance(98, 98);
      }
      assert.equal(pa.stagedCount, 50);
      assert.deepEqual(
        sent(a, 'initiation').map((d) => d.at),
        [t0],
      );
      await net.advanceTo(t0 + REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS, 10);
      const inits = sent(a, 'initiation');
      assert.equal(inits.length, 2);
      assertJitteredGap(inits[1]!.at - t0, REKEY_TIMEOUT_MS, 'first retry');
    });

    it('a responder refuses initiations from one peer faster than 50 per second', async () => {
      const { a, b, pa } = pair();
      const identity = a.device.identity!;
      const forge = () => {
        const hs = new Handshake(b.device.publicKey!);
        hs.precompute(identity);
        const msg = createInitiation(identity, hs, 7, net.clock.wallNow())!;
        pa.cookies.addMacs(msg);
        return { from: a.endpoint, to: b.endpoint, msg, at: net.clock.now() };
      };
      const first = forge();
      net.clock.advance(20); // a later TAI64N (granularity ~16.8 ms)
      const second = forge();
      net.deliver(first);
      net.deliver(second);
      await net.run();
      assert.equal(sent(b, 'response').length, 1);
      assert.equal(b.device.drops.get('initiation-flood'), 1);
      assert.equal(b.device.drops.get('timestamp-replay'), 0);

      net.clock.advance(19);
      net.deliver(second);
      await net.run();
      assert.equal(b.device.drops.get('initiation-flood'), 2, '19 ms is still too soon');
      net.clock.advance(1);
      net.deliver(second);
      await net.run();
      assert.equal(sent(b, 'response').length, 2, 'accepted 20 ms after the last one');
    });

    it('a replayed initiation is refused, also after the keys were zeroed', async () => {
      const { b, pb, t0 } = await session();
      const captured = net.wire.find((d) => kindOf(d) === 'initiation')!;
      const kpB = pb.current!;
      await net.advanceTo(t0 + S);
      const mark = net.wire.length;
      net.deliver(captured);
      await net.run();
      assert.equal(b.device.drops.get('timestamp-replay'), 1);
      assert.equal(net.wire.length, mark, 'no response to a replay');
      same(pb.current, kpB, 'B current');
      same(pb.next, null, 'B next');

      await net.advanceTo(t0 + ZERO_AFTER_MS + S, 10 * S);
      same(pb.current, null, 'B current');
      net.deliver(captured);
      await net.run();
      assert.equal(b.device.drops.get('timestamp-replay'), 2);
      assert.equal(sent(b, 'response').length, 1);
      assert.equal(b.device.keypairs.used, 0);
    });

    it('initiateHandshake sends at most one initiation per Rekey-Timeout, unless forced (a changed network: the last went out on a dead path)', async () => {
      const { a, pa } = pair();
      dropFrom(a, 'initiation');
      a.device.initiateHandshake(pa);
      a.device.initiateHandshake(pa);
      await net.run();
      assert.equal(sent(a, 'initiation').length, 1);
      a.device.initiateHandshake(pa, { force: true });
      await net.run();
      assert.equal(sent(a, 'initiation').length, 2);
    });

    it('a responder does not start its own handshake within Rekey-Timeout of answering one (kernel: the response sets last_sent_handshake)', async () => {
      const { a, b, pa, pb } = pair();
      dropFrom(a, 'keepalive'); // B never learns that A took the session: B holds it as next only
      a.device.initiateHandshake(pa);
      await net.run();
      const T = sent(b, 'response')[0]!.at;
      assert.ok(pa.current && pb.next && !pb.current, 'A has the session, B holds it as next only');

      await net.advanceTo(T + REKEY_TIMEOUT_MS - 1, 100);
      b.device.sendPacket(toA('waits'));
      assert.equal(sent(b, 'initiation').length, 0);
      assert.equal(pb.stagedCount, 1);

      await net.advanceTo(T + REKEY_TIMEOUT_MS);
      b.device.sendPacket(toA('now'));
      assert.deepEqual(
        sent(b, 'initiation').map((d) => d.at),
        [T + REKEY_TIMEOUT_MS],
      );
      await net.run();
      assert.deepEqual(a.received.map(payloadOf), ['waits', 'now']);
    });
  });

  describe('responder-side timers', () => {
    it('its new-handshake timer and retransmissions run like the initiator’s', async () => {
      const { a, b, pb, t0 } = await session();
      assert.equal(pb.current!.isInitiator, false);
      dropFrom(a);
      const T = t0 + S;
      await net.advanceTo(T);
      b.device.sendPacket(toA('unanswered'));
      await net.run();
      await net.advanceTo(T + 40 * S, 10);
      const inits = sent(b, 'initiation');
      assert.ok(inits.length >= 4, `${inits.length} initiations`);
      assertJitteredGap(inits[0]!.at - T, (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * S, 'new-handshake delay');
      inits.slice(1).forEach((d, i) => assertJitteredGap(d.at - inits[i]!.at, REKEY_TIMEOUT_MS, `retry ${i + 1}`));
      assert.equal(sent(a, 'initiation', t0 + 1).length, 0);
    });

    it('it sends persistent keepalives', async () => {
      const { a, b, t0 } = await session();
      const T = t0 + S;
      await net.advanceTo(T);
      b.device.setPeer(a.device.publicKey!, { persistentKeepalive: 20 });
      await net.advanceTo(T + 60 * S, 100);
      assert.deepEqual(
        sent(b, 'keepalive', T).map((d) => d.at - T),
        [0, 20, 40, 60].map((s) => s * S),
      );
      assert.equal(sent(a, 'keepalive', T).length, 0);
    });
  });
});
