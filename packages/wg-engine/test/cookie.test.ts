// mac1, cookies and load (whitepaper 5.3 and 5.4.7; the kernel's cookie.c and
// ratelimiter.c): what a responder does when its handshake queue backs up, and
// that one flooding source cannot lock every peer out.
import assert from 'node:assert/strict';
import {
  COOKIE_REFRESH_TIME,
  CookieChecker,
  CookieGenerator,
  Endpoint,
  FakeClock,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  RATELIMIT_PACKETS_BURSTABLE,
  REKEY_TIMEOUT,
  UNDER_LOAD_AFTER_TIME_MS,
  UNDER_LOAD_QUEUE_THRESHOLD,
  generatePrivateKey,
  publicKeyOf,
} from '../src/index.js';
import { mac } from '../src/crypto/primitives.js';
import { CookieReply, Initiation, Response } from '../src/messages.js';
import { mac1Of, mac2Of, openCookieReply, setMac1, setMac2, strangerInitiation } from './fixtures/forge.js';
import { FLOODER, LOAD, cookieRetry, deliver, flood, inject, takeOne, takeSent } from './fixtures/load.js';
import { MemoryNet, linkedPair, type LinkedPair, ipv4Packet } from './fixtures/net.js';

const S = 1000;
const ZERO_MAC = Buffer.alloc(16);

describe('cookies and load', () => {
  let net: MemoryNet;
  afterEach(() => net?.close());

  function pair(): LinkedPair {
    const p = linkedPair();
    net = p.net;
    return p;
  }

  /** Both sides hold the session: A's keepalive confirmed it to B, and data flows. */
  async function assertSession(p: LinkedPair, payload: string): Promise<void> {
    assert.ok(p.pa.current?.isInitiator, 'A holds an initiator keypair');
    assert.ok(p.pb.current && !p.pb.current.isInitiator, 'B confirmed its responder keypair');
    p.a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', payload));
    await net.run();
    assert.equal(p.b.received.at(-1)?.subarray(28).toString(), payload);
  }

  describe('mac1', () => {
    it('drops a handshake message with a wrong mac1 and sends nothing back', async () => {
      const { a, b, pa } = pair();
      a.device.initiateHandshake(pa);
      const init = takeOne(net, a, MESSAGE_INITIATION);

      const flipped = Buffer.from(init.msg);
      flipped[Initiation.MAC1 + 3]! ^= 0x40;
      b.device.receiveUdp(flipped, a.endpoint.address, a.endpoint.port);
      // mac1 computed for another responder's key: a message not meant for B.
      const otherKey = setMac1(Buffer.from(init.msg), publicKeyOf(generatePrivateKey()));
      b.device.receiveUdp(otherKey, a.endpoint.address, a.endpoint.port);
      // A changed byte mac1 covers.
      const body = Buffer.from(init.msg);
      body[Initiation.TIMESTAMP]! ^= 1;
      b.device.receiveUdp(body, a.endpoint.address, a.endpoint.port);
      await b.device.settled();
      assert.equal(b.device.drops.get('mac1'), 3);
      assert.equal(b.device.drops.total(), 3);
      assert.deepEqual(net.queue, [], 'no answer to a bad mac1');

      deliver(b, init);
      await b.device.settled();
      const response = takeOne(net, b, MESSAGE_RESPONSE);
      const badResponse = Buffer.from(response.msg);
      badResponse[Response.MAC1]! ^= 1;
      a.device.receiveUdp(badResponse, b.endpoint.address, b.endpoint.port);
      await a.device.settled();
      assert.equal(a.device.drops.get('mac1'), 1, 'responses are checked too');
      assert.equal(pa.current, null);
      deliver(a, response);
      await net.run();
      assert.ok(pa.current, 'the genuine response still completes the handshake');
    });

    it('sends no cookie for a wrong mac1, even under load', async () => {
      const { a, b, pa } = pair();
      a.device.initiateHandshake(pa);
      const init = takeOne(net, a, MESSAGE_INITIATION);
      flood(b.device);
      const bad = Buffer.from(init.msg);
      bad[Initiation.MAC1]! ^= 1;
      b.device.receiveUdp(bad, a.endpoint.address, a.endpoint.port);
      await b.device.settled();
      assert.ok(b.device.underLoad);
      assert.equal(b.device.drops.get('mac1'), 1);
      assert.equal(b.device.drops.get('cookie-required'), LOAD);
      assert.deepEqual(takeSent(net, b, MESSAGE_COOKIE_REPLY, a.endpoint), []);
    });
  });

  describe('under load', () => {
    it('answers an initiation without mac2 with a cookie; the retry carries mac2 and completes while still under load', async () => {
      const p = pair();
      const { a, b, pa } = p;
      const ex = await cookieRetry(net, a, b);

      // B's side: every initiation without mac2 was refused and answered.
      assert.equal(b.device.drops.get('cookie-required'), LOAD + 1);
      assert.equal(b.device.drops.total(), LOAD + 1);
      assert.deepEqual(mac2Of(ex.first.msg), ZERO_MAC, 'no cookie yet, so no mac2');
      const reply = ex.reply.msg;
      assert.equal(reply.length, MESSAGE_COOKIE_REPLY_SIZE);
      assert.equal(reply.readUInt32LE(0), MESSAGE_COOKIE_REPLY, 'type 3 with zero reserved bytes');
      assert.equal(reply.readUInt32LE(CookieReply.RECEIVER), ex.first.msg.readUInt32LE(Initiation.SENDER));
      assert.equal(pa.current, null);

      // A's side: the cookie consumed without complaint, the retry one Rekey-Timeout later with mac2.
      assert.equal(a.device.drops.total(), 0);
      assert.ok(pa.cookies.hasFreshCookie);
      assert.equal(ex.early, 0, 'no retry before Rekey-Timeout');
      assert.deepEqual(mac2Of(ex.retry.msg), mac(ex.cookie, ex.retry.msg.subarray(0, Initiation.MAC2)));

      // Still flooded when the retry arrives: it passes on its mac2.
      flood(b.device);
      deliver(b, ex.retry);
      await net.run();
      assert.ok(b.device.underLoad, 'the handshake completed under load');
      assert.equal(b.device.drops.get('cookie-required'), 2 * LOAD + 1, 'only the flood was refused');
      assert.equal(b.device.drops.get('unknown-peer'), 0);
      await assertSession(p, 'under load');
    });

    it('binds the cookie to the source address and port', async () => {
      const p = pair();
      const { a, b } = p;
      const ex = await cookieRetry(net, a, b);
      const otherPort = Endpoint.of(a.endpoint.address, a.endpoint.port + 1);
      const otherAddress = Endpoint.of('192.0.2.99', a.endpoint.port);
      const before = b.device.drops.get('cookie-required');

      flood(b.device);
      deliver(b, ex.retry, otherPort);
      deliver(b, ex.retry, otherAddress);
      await b.device.settled();
      assert.equal(b.device.drops.get('cookie-required'), before + LOAD + 2);
      for (const to of [otherPort, otherAddress]) {
        const again = takeOne(net, b, MESSAGE_COOKIE_REPLY, to);
        assert.ok(openCookieReply(again.msg, b.device.publicKey!, mac1Of(ex.retry.msg)), `a fresh cookie for ${to.toString()}`);
      }
      assert.deepEqual(takeSent(net, b, MESSAGE_RESPONSE), []);

      // Still under load (it lasts a second after the flood); from the right endpoint the same bytes pass.
      assert.ok(b.device.underLoad);
      deliver(b, ex.retry);
      await net.run();
      assert.equal(b.device.drops.get('cookie-required'), before + LOAD + 2);
      await assertSession(p, 'bound');
    });

    it('rate-limits a flooder with valid mac2 per source; a peer from another source still completes', async () => {
      const p = pair();
      const { a, b } = p;
      const ex = await cookieRetry(net, a, b);
      // The flooder asks for its own cookie like anyone can, and floods with a valid mac2.
      const flooderReply = net.wire.find((d) => d.to.equals(FLOODER.address, FLOODER.port) && d.msg[0] === MESSAGE_COOKIE_REPLY)!;
      const flooderCookie = openCookieReply(flooderReply.msg, b.device.publicKey!, mac1Of(ex.stranger))!;
      const withMac2 = setMac2(Buffer.from(ex.stranger), flooderCookie);
      const refused = b.device.drops.get('cookie-required');

      inject(b.device, withMac2, LOAD, FLOODER);
      deliver(b, ex.retry);
      await net.run();
      assert.ok(b.device.underLoad);
      assert.equal(b.device.drops.get('cookie-required'), refused, 'every flood message carried a valid mac2');
      assert.equal(b.device.drops.get('unknown-peer'), RATELIMIT_PACKETS_BURSTABLE, 'the burst got through to the handshake');
      assert.equal(b.device.drops.get('ratelimited'), LOAD - RATELIMIT_PACKETS_BURSTABLE);
      await assertSession(p, 'past the flooder');
    });

    it('stops trusting a cookie once the secret is 120 s old', async () => {
      const p = pair();
      const { a, b } = p;
      const secretBorn = net.clock.now(); // B mints its first secret for the first flood
      const ex = await cookieRetry(net, a, b);
      flood(b.device);
      deliver(b, ex.retry);
      await net.run();
      await assertSession(p, 'fresh');

      // The same retry again just before the secret turns: mac2 still checks, and the
      // message reaches the handshake, which refuses it as a replayed timestamp.
      net.clock.advance(secretBorn + COOKIE_REFRESH_TIME * S - 1 - net.clock.now());
      net.queue = [];
      const refused = b.device.drops.get('cookie-required');
      flood(b.device);
      deliver(b, ex.retry);
      await b.device.settled();
      assert.equal(b.device.drops.get('timestamp-replay'), 1);
      assert.equal(b.device.drops.get('cookie-required'), refused + LOAD);

      net.clock.advance(1);
      net.queue = [];
      flood(b.device);
      deliver(b, ex.retry);
      await b.device.settled();
      assert.equal(b.device.drops.get('timestamp-replay'), 1);
      assert.equal(b.device.drops.get('cookie-required'), refused + 2 * LOAD + 1, 'a 120 s old cookie is no cookie');
      const reissued = takeOne(net, b, MESSAGE_COOKIE_REPLY, a.endpoint);
      const fresh = openCookieReply(reissued.msg, b.device.publicKey!, mac1Of(ex.retry.msg))!;
      assert.ok(!fresh.equals(ex.cookie), 'minted under the new secret');
    });

    it('is judged when the queue drains and ends 1 s after it drains below 1/8 full', async () => {
      const p = pair();
      const { a, b, pa } = p;
      const stranger = strangerInitiation(b.device.publicKey!, net.clock.wallNow());
      // One short of the threshold (with A's initiation): not under load, no cookie needed.
      a.device.initiateHandshake(pa);
      const first = takeOne(net, a, MESSAGE_INITIATION);
      inject(b.device, stranger, UNDER_LOAD_QUEUE_THRESHOLD - 2, FLOODER);
      deliver(b, first);
      await b.device.settled();
      assert.equal(b.device.underLoad, false);
      assert.equal(b.device.drops.get('cookie-required'), 0);
      assert.equal(b.device.drops.get('unknown-peer'), UNDER_LOAD_QUEUE_THRESHOLD - 2);
      deliver(a, takeOne(net, b, MESSAGE_RESPONSE));
      await net.run();
      assert.ok(p.pb.current, 'the handshake completed without a cookie');

      // Exactly at the threshold. The backlog sits for 500 ms before it drains: load
      // is judged as it drains, and lasts one second from then.
      inject(b.device, stranger, UNDER_LOAD_QUEUE_THRESHOLD, FLOODER);
      net.clock.advance(500);
      const drained = net.clock.now();
      await b.device.settled();
      assert.equal(b.device.drops.get('cookie-required'), UNDER_LOAD_QUEUE_THRESHOLD);
      net.clock.advance(drained + UNDER_LOAD_AFTER_TIME_MS - 1 - net.clock.now());
      assert.equal(b.device.underLoad, true);
      net.clock.advance(1);
      assert.equal(b.device.underLoad, false);

      // Load over: A's initiation without mac2 is answered with a response again.
      pa.zeroKeyMaterial();
      p.pb.zeroKeyMaterial();
      net.clock.advance(REKEY_TIMEOUT * S);
      net.queue = [];
      a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'after load'));
      await net.run();
      assert.equal(b.device.drops.get('cookie-required'), UNDER_LOAD_QUEUE_THRESHOLD);
      assert.equal(b.received.at(-1)?.subarray(28).toString(), 'after load');
    });
  });

  describe('cookie replies', () => {
    it('drops a reply for an unknown index, refuses forged and replayed ones, and takes the genuine one', async () => {
      const { a, b, pa } = pair();
      a.device.initiateHandshake(pa);
      const first = takeOne(net, a, MESSAGE_INITIATION);
      flood(b.device);
      deliver(b, first);
      await b.device.settled();
      const reply = takeOne(net, b, MESSAGE_COOKIE_REPLY, a.endpoint);
      const fromB = b.endpoint;
      const send = (msg: Buffer) => a.device.receiveUdp(msg, fromB.address, fromB.port);

      const unknown = Buffer.from(reply.msg);
      let index = reply.msg.readUInt32LE(CookieReply.RECEIVER);
      while (a.device.index.get(index)) index = (index + 1) >>> 0;
      unknown.writeUInt32LE(index, CookieReply.RECEIVER);
      send(unknown);
      const badCookie = Buffer.from(reply.msg);
      badCookie[CookieReply.COOKIE + 5]! ^= 1;
      send(badCookie);
      const badNonce = Buffer.from(reply.msg);
      badNonce[CookieReply.NONCE]! ^= 1;
      send(badNonce);
      await a.device.settled();
      assert.equal(a.device.drops.get('unknown-receiver'), 1);
      assert.equal(a.device.drops.get('cookie-decrypt'), 2);
      assert.equal(pa.cookies.hasFreshCookie, false, 'nothing forged was taken');

      send(Buffer.from(reply.msg));
      await a.device.settled();
      assert.ok(pa.cookies.hasFreshCookie);
      assert.equal(a.device.drops.total(), 3);
      send(Buffer.from(reply.msg));
      await a.device.settled();
      assert.equal(a.device.drops.get('cookie-decrypt'), 3, 'a cookie answers one message: the replay is refused');
    });
  });

  describe('CookieChecker and CookieGenerator', () => {
    const clock = new FakeClock();
    const responderKey = publicKeyOf(generatePrivateKey());

    function message(): Buffer {
      const msg = Buffer.alloc(MESSAGE_INITIATION_SIZE, 0x5a);
      msg.writeUInt32LE(MESSAGE_INITIATION, 0);
      return setMac1(msg, responderKey);
    }

    it('validates mac2 only from the endpoint the cookie was made for, IPv4 and IPv6', () => {
      const checker = new CookieChecker(clock);
      checker.init(responderKey);
      for (const [src, others] of [
        [Endpoint.of('192.0.2.1', 51001), [Endpoint.of('192.0.2.1', 51002), Endpoint.of('192.0.2.3', 51001)]],
        [Endpoint.of('2001:db8::1', 51001), [Endpoint.of('2001:db8::1', 1), Endpoint.of('2001:db8::2', 51001)]],
      ] as const) {
        const msg = message();
        assert.ok(checker.checkMac1(msg));
        const cookie = openCookieReply(checker.createReply(msg, src), responderKey, mac1Of(msg))!;
        setMac2(msg, cookie);
        assert.ok(checker.checkMac2(msg, src));
        for (const o of others) assert.equal(checker.checkMac2(msg, o), false, `not from ${o.toString()}`);
      }
    });

    it('rotates its secret after 120 s', () => {
      const c = new FakeClock();
      const checker = new CookieChecker(c);
      checker.init(responderKey);
      const src = Endpoint.of('192.0.2.1', 51001);
      const msg = message();
      const cookie = openCookieReply(checker.createReply(msg, src), responderKey, mac1Of(msg))!;
      setMac2(msg, cookie);
      c.advance(COOKIE_REFRESH_TIME * S - 1);
      assert.ok(checker.checkMac2(msg, src));
      c.advance(1);
      assert.equal(checker.checkMac2(msg, src), false);
      const renewed = openCookieReply(checker.createReply(msg, src), responderKey, mac1Of(msg))!;
      assert.ok(!renewed.equals(cookie));
      assert.ok(checker.checkMac2(setMac2(msg, renewed), src));
    });

    it('adds mac2 while its cookie is fresh (Cookie-Refresh-Time less Rekey-Timeout) and takes one reply per message', () => {
      const c = new FakeClock();
      const checker = new CookieChecker(c);
      checker.init(responderKey);
      const gen = new CookieGenerator(responderKey, c);
      const src = Endpoint.of('192.0.2.1', 51001);
      const msg = message();
      gen.addMacs(msg);
      assert.ok(checker.checkMac1(msg));
      assert.deepEqual(mac2Of(msg), ZERO_MAC);
      const reply = checker.createReply(msg, src);
      assert.ok(gen.consumeReply(reply));
      assert.equal(gen.consumeReply(reply), false, 'replayed');

      const next = message();
      gen.addMacs(next);
      assert.ok(checker.checkMac2(next, src));
      c.advance((COOKIE_REFRESH_TIME - REKEY_TIMEOUT) * S - 1);
      gen.addMacs(next);
      assert.ok(checker.checkMac2(next, src));
      c.advance(1);
      gen.addMacs(next);
      assert.deepEqual(mac2Of(next), ZERO_MAC, 'a cookie that may outlive the secret is not used');
    });
  });
});
