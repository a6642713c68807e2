// The data plane on its one path, run to completion: real TUN queues and a
// SO_REUSEPORT group of UDP sockets in a lab (fixtures/rtc-lab.ts), shards
// that are real piscina workers running the compiled engine (or, with
// workers 0, the same Shard inline on the main thread).
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import { A_INNER, B_INNER, INNER_PORT, RtcLab, assertUniqueCounters, ipv4Udp, udpIn, until } from './fixtures/rtc-lab.js';
import { Prng, seedFrom } from './fixtures/prng.js';

/** Packets kept in flight at most, all flows together: far below a TUN queue (500) or B's socket buffer, so none is lost to pacing. */
const WINDOW = 64;
/** The most a shard reads before it seals and sends (RTC_BATCH in data/shard.ts): what a shard that dies can take with it. */
const BATCH = 16;

interface Flows {
  /** Packets sent per flow. */
  sent: number[];
  /** Packets B got per flow, and how many of them came before one sent earlier. */
  got: number[];
  reordered: number;
  close(): void;
}

/** `count` sockets in A's namespace, each one flow (its own source port) to B. */
async function openFlows(lab: RtcLab, count: number): Promise<{ senders: dgram.Socket[]; flows: Flows }> {
  const senders = await Promise.all(Array.from({ length: count }, () => udpIn(lab.a, A_INNER)));
  const flows: Flows = {
    sent: new Array<number>(count).fill(0),
    got: new Array<number>(count).fill(0),
    reordered: 0,
    close: () => senders.forEach((s) => s.close()),
  };
  return { senders, flows };
}

let runs = 0;

/**
 * Sends packets round-robin over the flows for `ms`, at most WINDOW in flight,
 * calling `during(sent)` between rounds; then waits until B got all of them
 * but `mayLose`. Each packet carries its flow, its number in that flow and its run.
 */
async function runFlows(
  lab: RtcLab,
  flowCount: number,
  ms: number,
  opts: { during?: (sent: number) => void; mayLose?: number } = {},
): Promise<Flows> {
  const { senders, flows } = await openFlows(lab, flowCount);
  // Each run tags its packets: one a run was allowed to lose may still arrive during the next.
  const run = ++runs;
  let seen = lab.delivered.length;
  let mine = 0;
  const tally = () => {
    for (; seen < lab.delivered.length; seen++) {
      const p = lab.delivered[seen]!;
      if (p.length < 40 || p.readUInt16BE(22) !== INNER_PORT || p.readUInt32BE(36) !== run) continue;
      mine++;
      const flow = p.readUInt32BE(28);
      const n = p.readUInt32BE(32);
      if (n < flows.got[flow]!) flows.reordered++;
      flows.got[flow] = Math.max(flows.got[flow]!, n + 1);
    }
    return mine;
  };
  const total = () => flows.sent.reduce((a, b) => a + b, 0);
  try {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (total() - tally() + flowCount <= WINDOW) {
        senders.forEach((s, f) => {
          const body = Buffer.alloc(64);
          body.writeUInt32BE(f, 0);
          body.writeUInt32BE(flows.sent[f]!++, 4);
          body.writeUInt32BE(run, 8);
          s.send(body, INNER_PORT, B_INNER);
        });
        opts.during?.(total());
      }
      await new Promise((r) => setImmediate(r));
    }
    const mayLose = opts.mayLose ?? 0;
    await until(
      () => tally() >= total() - mayLose,
      () =>
        `B got ${mine} of ${total()}; A drops ${JSON.stringify(lab.dropsA())}, shards ${JSON.stringify(lab.plane.shardStats().map((s) => [s.egressPackets, s.restarts]))}`,
    );
    tally();
    return flows;
  } finally {
    flows.close();
  }
}

describe('data plane, run to completion (TUN queues and SO_REUSEPORT sockets in a lab)', function () {
  this.timeout(120_000);
  let lab: RtcLab;

  afterEach(async () => {
    await lab?.close();
  });

  it('4 shards, 8 parallel flows: no flow is reordered, and the flows spread over the shards', async () => {
    lab = await RtcLab.create(4);
    await lab.handshake();
    const flows = await runFlows(lab, 8, 2000);
    assert.equal(flows.reordered, 0, 'a flow left the plane out of order');
    assert.deepEqual(flows.got, flows.sent, 'every packet of every flow arrived');
    assert.ok(flows.sent[0]! > 100, `only ${flows.sent[0]} packets per flow in 2 s`);
    const busy = lab.plane.shardStats().filter((s) => s.egressPackets > 0);
    assert.ok(busy.length >= 2, `the kernel spread 8 flows over ${busy.length} queue(s)`);
  });

  it("keeps every nonce unique when one peer's egress meets several shards", async () => {
    lab = await RtcLab.create(4);
    await lab.handshake();
    const wireBefore = lab.wire.length;
    const flows = await runFlows(lab, 8, 2000);
    const wire = lab.wire.slice(wireBefore);
    assertUniqueCounters(wire);
    // A counter used twice would have been refused by B's replay window.
    assert.equal(wire.filter((m) => m.inner === null).length, 0);
    assert.equal(lab.peerB.drops.get('replay'), 0);
    const sealedBy = lab.plane.shardStats().filter((s) => s.egressPackets > 0).length;
    assert.ok(sealedBy >= 2, `one peer's packets were sealed by ${sealedBy} shard(s): the test needs at least 2`);
    assert.equal(
      wire.length,
      flows.sent.reduce((a, b) => a + b, 0),
    );
  });

  it('a shard killed mid-transfer loses at most one batch, and the plane restarts it', async () => {
    lab = await RtcLab.create(4);
    await lab.handshake();
    let victim = -1;
    const flows = await runFlows(lab, 8, 3000, {
      mayLose: BATCH,
      during: (sent) => {
        if (victim !== -1 || sent < 2000) return;
        // The busiest shard: it has flows, so it dies inside its next slot.
        const stats = lab.plane.shardStats();
        victim = stats.reduce((best, s) => (s.egressPackets > stats[best]!.egressPackets ? s.shard : best), 0);
        lab.plane.crashShard(victim);
      },
    });
    await until(
      () => lab.plane.shardStats()[victim]!.restarts === 1,
      () => `shard ${victim} was not restarted`,
    );
    const sent = flows.sent.reduce((a, b) => a + b, 0);
    const got = flows.got.reduce((a, b) => a + b, 0);
    assert.ok(sent - got <= BATCH, `lost ${sent - got} packets (a batch is ${BATCH})`);
    assert.equal(flows.reordered, 0);
    assert.ok(lab.plane.shardStats()[victim]!.egressPackets > 0);
    // The restarted shard carries its flows again.
    const before = lab.plane.shardStats()[victim]!.egressPackets;
    const again = await runFlows(lab, 8, 1000);
    assert.deepEqual(again.got, again.sent);
    assert.ok(lab.plane.shardStats()[victim]!.egressPackets >= before);
  });

  for (const workers of [0, 2]) {
    it(`carries traffic both ways with workers ${workers}, and B's packets reach A's sockets through the TUN`, async () => {
      lab = await RtcLab.create(workers);
      await lab.handshake();
      const flows = await runFlows(lab, 4, 500);
      assert.deepEqual(flows.got, flows.sent);
      const inbox = await udpIn(lab.a, A_INNER, INNER_PORT);
      try {
        const got: string[] = [];
        inbox.on('message', (m) => got.push(m.toString()));
        for (let i = 0; i < 20; i++) lab.sendFromB(ipv4Udp(B_INNER, A_INNER, `to-a-${i}`));
        await until(
          () => got.length === 20,
          () => `A delivered ${got.length} of 20; drops ${JSON.stringify(lab.dropsA())}`,
        );
        assert.deepEqual(
          got,
          Array.from({ length: 20 }, (_, i) => `to-a-${i}`),
        );
      } finally {
        inbox.close();
      }
    });
  }

  it("opens each copy of a replayed message once, whichever shard a copy's source port lands on", async () => {
    lab = await RtcLab.create(4);
    await lab.handshake();
    const inbox = await udpIn(lab.a, A_INNER, INNER_PORT);
    // Copies sent from other source ports: SO_REUSEPORT hashes them onto other shards, which
    // race on the one replay window of the keypair.
    const replayers = await Promise.all(Array.from({ length: 4 }, () => udpIn(lab.b, lab.bSocket.address().address)));
    const sealed: Buffer[] = [];
    const send = lab.peerB.io.sendUdp;
    lab.peerB.io = { ...lab.peerB.io, sendUdp: (msg, to) => (sealed.push(Buffer.from(msg)), send(msg, to)) };
    try {
      const got: string[] = [];
      inbox.on('message', (m) => got.push(m.toString()));
      const N = 200;
      for (let i = 0; i < N; i++) lab.sendFromB(ipv4Udp(B_INNER, A_INNER, `r${i}`));
      lab.peerB.io = { ...lab.peerB.io, sendUdp: send };
      const transport = sealed.filter((m) => m[0] === 4);
      assert.equal(transport.length, N);
      for (const m of transport) for (const r of replayers) r.send(m, lab.aPort, lab.aAddress);
      await until(
        () => got.length >= N && lab.drops('replay') >= N * replayers.length,
        () => `A delivered ${got.length} of ${N}, replays refused ${lab.drops('replay')} of ${N * replayers.length}`,
      );
      assert.equal(new Set(got).size, N);
      assert.equal(got.length, N, 'a message was opened twice');
    } finally {
      inbox.close();
      replayers.forEach((r) => r.close());
    }
  });

  it('opens and counts a keepalive from B but writes nothing to the TUN', async () => {
    lab = await RtcLab.create(2);
    await lab.handshake();
    const peer = lab.device.getPeer(lab.peerB.publicKey!)!;
    const rxPackets = async () => Number((await lab.a.exec('cat', `/sys/class/net/${lab.tun.name}/statistics/rx_packets`)).stdout);
    const opened = () => lab.plane.shardStats().reduce((t, s) => t + s.ingressPackets, 0);
    const drops = () => lab.plane.shardStats().reduce((t, s) => t + s.drops.total(), 0);
    lab.plane.syncCounters();
    const before = {
      opened: opened(),
      drops: drops(),
      written: lab.plane.ringStats().ingress.emitted,
      tun: await rxPackets(),
      rx: peer.rxBytes,
    };
    lab.peerB.getPeer(lab.device.publicKey!)!.sendKeepalive();
    await until(
      () => opened() > before.opened,
      () => `no shard took B's keepalive; drops ${JSON.stringify(lab.dropsA())}`,
    );
    lab.plane.syncCounters();
    assert.equal(opened() - before.opened, 1);
    assert.equal(drops(), before.drops, `the keepalive was dropped: ${JSON.stringify(lab.dropsA())}`);
    // Authenticated: counted for the peer (32 bytes: header, counter, tag) as its timers need.
    assert.equal(peer.rxBytes - before.rx, 32);
    assert.equal(lab.plane.ringStats().ingress.emitted, before.written, 'the keepalive was handed to the TUN writer');
    assert.equal(await rxPackets(), before.tun, "the TUN's kernel side got a packet");
    // The same count does see a data packet: the check above can fail.
    const inbox = await udpIn(lab.a, A_INNER, INNER_PORT);
    try {
      let got = 0;
      inbox.on('message', () => got++);
      lab.sendFromB(ipv4Udp(B_INNER, A_INNER, 'data'));
      await until(
        () => got === 1,
        () => `A did not deliver B's packet; drops ${JSON.stringify(lab.dropsA())}`,
      );
      assert.equal(await rxPackets(), before.tun + 1);
    } finally {
      inbox.close();
    }
  });

  it('drops and counts datagrams of no known type and ones naming no session; the shards keep running', async () => {
    lab = await RtcLab.create(2);
    await lab.handshake();
    const junk = await udpIn(lab.b, lab.bSocket.address().address);
    try {
      const bad = [Buffer.alloc(3), Buffer.from([4, 0, 0, 0, 1, 2, 3, 4]), Buffer.alloc(200, 4), Buffer.alloc(148, 9)];
      const before = Object.values(lab.dropsA()).reduce((a, b) => a + (b ?? 0), 0);
      for (const b of bad) junk.send(b, lab.aPort, lab.aAddress);
      await until(
        () => Object.values(lab.dropsA()).reduce((a, b) => a + (b ?? 0), 0) - before === bad.length,
        () => `drops ${JSON.stringify(lab.dropsA())}`,
      );
      const flows = await runFlows(lab, 2, 300);
      assert.deepEqual(flows.got, flows.sent);
    } finally {
      junk.close();
    }
  });

  it('fuzz: random and mutated transport datagrams to 4 shards for 2 s are each dropped once or delivered, and traffic flows on', async () => {
    const seed = seedFrom('FUZZ_SEED');
    const rng = new Prng(seed);
    const AT = `(FUZZ_SEED=${seed})`;
    lab = await RtcLab.create(4);
    await lab.handshake();
    const inbox = await udpIn(lab.a, A_INNER, INNER_PORT);
    let delivered = 0;
    inbox.on('message', () => delivered++);
    // Real messages to mutate, sealed by B for A.
    const sealed: Buffer[] = [];
    const send = lab.peerB.io.sendUdp;
    lab.peerB.io = { ...lab.peerB.io, sendUdp: (msg) => (sealed.push(Buffer.from(msg)), true) };
    for (let i = 0; i < 64; i++) lab.sendFromB(ipv4Udp(B_INNER, A_INNER, rng.bytes(rng.int(200))));
    lab.peerB.io = { ...lab.peerB.io, sendUdp: send };
    const fuzzers = await Promise.all(Array.from({ length: 4 }, () => udpIn(lab.b, lab.bSocket.address().address)));
    const shardTotals = (): [number, number] =>
      lab.plane.shardStats().reduce<[number, number]>((t, s) => [t[0] + s.ingressPackets, t[1] + s.drops.total()], [0, 0]);
    const [ingress0, drops0] = shardTotals();
    let sent = 0;
    try {
      const end = Date.now() + 2000;
      while (Date.now() < end) {
        for (let i = 0; i < 32; i++) {
          let d: Buffer;
          if (rng.chance(0.2)) {
            // Random bytes of any length a datagram may have, never a handshake type (those go to the main thread).
            d = rng.bytes(1 + rng.int(1500));
            if (d[0]! >= 1 && d[0]! <= 3) d[0] = 4;
          } else {
            d = Buffer.from(sealed[rng.int(sealed.length)]!);
            for (let k = rng.int(4); k >= 0; k--) {
              const at = rng.int(d.length);
              d[at] = d[at]! ^ (1 << rng.int(8));
            }
            if (rng.chance(0.1)) d = d.subarray(0, rng.int(d.length));
          }
          fuzzers[rng.int(fuzzers.length)]!.send(d, lab.aPort, lab.aAddress);
          sent++;
        }
        await until(
          () => shardTotals()[0] - ingress0 >= sent - 64,
          () => `the shards took ${shardTotals()[0] - ingress0} of ${sent} ${AT}`,
        );
      }
      await until(
        () => shardTotals()[0] - ingress0 === sent && shardTotals()[1] - drops0 + delivered === sent,
        () =>
          `${sent} sent: the shards took ${shardTotals()[0] - ingress0}, dropped ${shardTotals()[1] - drops0}, delivered ${delivered} ${AT}`,
      );
      assert.ok(sent > 1000, `only ${sent} datagrams in 2 s`);
      // The mutations that left a message intact delivered it at most once: the rest were replays.
      assert.ok(delivered <= sealed.length, `${delivered} delivered from ${sealed.length} real messages ${AT}`);
      // A copy whose flips cancelled out is a real message: the first one A saw came from a fuzzer's
      // port, and A roamed there, as WireGuard does. B's next packet brings A back to B's socket.
      const peer = lab.device.getPeer(lab.peerB.publicKey!)!;
      const before = delivered;
      lab.sendFromB(ipv4Udp(B_INNER, A_INNER, 'back'));
      await until(
        () => delivered > before && peer.endpoint?.port === lab.bSocket.address().port,
        () => `A did not take B's packet from B's socket; A's endpoint for B: ${peer.endpoint?.toString()} ${AT}`,
      );
      const flows = await runFlows(lab, 4, 300);
      assert.deepEqual(flows.got, flows.sent, `traffic after the fuzz ${AT}`);
    } finally {
      inbox.close();
      fuzzers.forEach((f) => f.close());
    }
  });
});
