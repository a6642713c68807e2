// Closing the data plane sends what each shard's TUN queue holds at that
// moment: a cage's plane closes right after its command exits, and what the
// exit left in the queue (the last datagrams, the FINs and resets of its
// connections) is the peer's only news of that end. Real TUN queues and
// sockets (fixtures/rtc-lab.ts).
import assert from 'node:assert/strict';
import { UdpSocket } from '@wirecage/tun';
import { A_INNER, B_INNER, INNER_PORT, RtcLab, until } from './fixtures/rtc-lab.js';

/** Datagrams queued just before the close: far below the TUN queue's 500, so the kernel drops none of them. */
const BURST = 200;
const B_BYTES = Buffer.from(B_INNER.split('.').map(Number));

/** Datagrams B opened from `sender`'s port whose payload starts with `tag`. */
function countFrom(lab: RtcLab, port: number, tag: string): number {
  return lab.delivered.filter((p) => p.length > 28 && p.readUInt16BE(20) === port && p.subarray(28, 28 + tag.length).toString() === tag)
    .length;
}

describe('data plane, run to completion: close sends what the TUN queues hold', function () {
  this.timeout(60_000);
  let lab: RtcLab;
  let sender: UdpSocket | null = null;

  afterEach(async () => {
    sender?.close();
    sender = null;
    await lab?.close();
  });

  for (const workers of [0, 2]) {
    it(`${BURST} datagrams written to the TUN just before close() all reach the peer (workers ${workers})`, async () => {
      lab = await RtcLab.create(workers);
      await lab.handshake();
      // One flow (one source port), so one TUN queue: a first datagram through it shows that
      // queue's shard is serving before the burst.
      const s = (sender = UdpSocket.open({ family: 4, netnsFd: lab.a.fd, address: A_INNER }));
      s.sendTo(Buffer.from('warm'), 4, B_BYTES, INNER_PORT);
      await until(
        () => countFrom(lab, s.port, 'warm') === 1,
        () => 'the warm-up datagram did not arrive',
      );
      // Written and closed in one synchronous stretch: the event loop never turns in between, so
      // the inline shard (workers 0) never sees the TUN readable, and a worker shard sees CLOSED
      // with the rest of the burst still queued.
      for (let i = 0; i < BURST; i++) assert.ok(s.sendTo(Buffer.from(`last ${i}`), 4, B_BYTES, INNER_PORT), `send ${i}`);
      await lab.stopPlane();
      await until(
        () => countFrom(lab, s.port, 'last ') === BURST,
        () => `B got ${countFrom(lab, s.port, 'last ')} of ${BURST}; A drops ${JSON.stringify(lab.dropsA())}`,
        5_000,
      );
    });
  }
});
