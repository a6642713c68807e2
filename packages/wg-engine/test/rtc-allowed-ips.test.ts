// Allowed-IPs changes while the shards run (`wg set` on a live device): the
// plane hands each shard the changed peer's routes alone, and a shard applies
// them before the next packet it reads. Both rules follow: where A seals a
// packet to (its destination's peer) and what A accepts from a peer (the
// source of what it opens). Real TUN queues and sockets (fixtures/rtc-lab.ts).
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import { parseCidr, type Peer } from '../src/index.js';
import { A_INNER, INNER_PORT, RtcLab, ipv4Udp, udpIn, until } from './fixtures/rtc-lab.js';

/** Flows from A (each its own source port): the kernel spreads them over the TUN queues, so every shard is asked. */
const FLOWS = 8;
const OLD = '10.0.0.2';
const NEW = '10.0.0.3';

describe('data plane, run to completion: allowed-IPs changes reach the shards peer by peer', function () {
  this.timeout(120_000);
  let lab: RtcLab;
  let senders: dgram.Socket[] = [];
  let inbox: dgram.Socket | null = null;

  afterEach(async () => {
    senders.forEach((s) => s.close());
    senders = [];
    inbox?.close();
    inbox = null;
    await lab?.close();
  });

  it('a prefix moved to another peer, a peer given a new range, a peer removed: the old range is dropped and counted, the new one flows', async () => {
    lab = await RtcLab.create(2);
    await lab.handshake();
    senders = await Promise.all(Array.from({ length: FLOWS }, () => udpIn(lab.a, A_INNER)));
    inbox = await udpIn(lab.a, A_INNER, INNER_PORT);
    const opened: string[] = [];
    inbox.on('message', (m) => opened.push(m.toString()));
    let c: Peer | null = null;

    /** A sends 2 packets per flow to dst and waits until each ended one way; returns how many went which. */
    const fromA = async (dst: string) => {
      const before = { b: lab.delivered.length, staged: c?.stagedCount ?? 0, noRoute: lab.drops('no-route') };
      const now = () => ({
        b: lab.delivered.length - before.b,
        staged: (c?.stagedCount ?? 0) - before.staged,
        noRoute: lab.drops('no-route') - before.noRoute,
      });
      for (let i = 0; i < 2; i++) senders.forEach((s, f) => s.send(`to ${dst} ${f}.${i}`, INNER_PORT, dst));
      const n = 2 * FLOWS;
      await until(
        () => Object.values(now()).reduce((a, b) => a + b, 0) >= n,
        () => `of ${n} packets to ${dst}: ${JSON.stringify(now())}; A drops ${JSON.stringify(lab.dropsA())}`,
      );
      return now();
    };
    /** B seals a packet from src to A; resolves true when A delivered it, false when A dropped it for its source. */
    const fromB = async (src: string) => {
      const before = { opened: opened.length, refused: lab.drops('allowed-ips') };
      lab.sendFromB(ipv4Udp(src, A_INNER, `from ${src}`));
      await until(
        () => opened.length > before.opened || lab.drops('allowed-ips') > before.refused,
        () => `A neither delivered nor refused B's packet from ${src}; drops ${JSON.stringify(lab.dropsA())}`,
      );
      assert.equal(opened.length - before.opened + lab.drops('allowed-ips') - before.refused, 1);
      return opened.length > before.opened;
    };

    assert.deepEqual(await fromA(OLD), { b: 2 * FLOWS, staged: 0, noRoute: 0 });
    assert.equal(await fromB(OLD), true);

    // C takes B's prefix: C has no session, so the shards hand C's packets to the main thread, which stages them.
    c = lab.device.setPeer(Buffer.alloc(32, 7), { allowedIps: [parseCidr(`${OLD}/32`)] });
    assert.deepEqual(await fromA(OLD), { b: 0, staged: 2 * FLOWS, noRoute: 0 }, `${OLD} still sealed for B`);
    assert.equal(await fromB(OLD), false, `B's packet from ${OLD} accepted after C took it`);

    // B gets a new range in place of its old one (C keeps OLD).
    lab.device.setPeer(lab.peerB.publicKey!, { allowedIps: [parseCidr(`${NEW}/32`)], replaceAllowedIps: true });
    assert.deepEqual(await fromA(NEW), { b: 2 * FLOWS, staged: 0, noRoute: 0 }, `${NEW} not sealed for B`);
    assert.equal(await fromB(NEW), true, `B's packet from ${NEW} refused`);

    // C removed: nobody allows OLD any more; B's routes are untouched by another peer's removal.
    lab.device.removePeer(c.publicKey);
    c = null;
    assert.deepEqual(await fromA(OLD), { b: 0, staged: 0, noRoute: 2 * FLOWS }, `${OLD} after C was removed`);
    assert.equal(await fromB(OLD), false);
    assert.deepEqual(await fromA(NEW), { b: 2 * FLOWS, staged: 0, noRoute: 0 });
    assert.equal(await fromB(NEW), true);

    const sealedBy = lab.plane.shardStats().filter((s) => s.egressPackets > 0).length;
    assert.equal(sealedBy, 2, `the kernel spread ${FLOWS} flows over ${sealedBy} of 2 queues: the test needs both`);
  });
});
