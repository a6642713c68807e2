// Not a test: measures UDP pump echo throughput with one shard.
//   ip netns add wctbench && ip -n wctbench link set lo up
//   node --import tsx test/bench-udp-echo.ts /run/netns/wctbench [seconds] [size] [gso 0|1] [window]
//   ip netns del wctbench
// Echo side: udpReader -> 1 worker shard (identity: back to the source) -> udpWriter.
// Load: a peer socket with its own pumps, driven from the main thread with a window of [window] datagrams in flight.
import { openSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';
import { consume, Doorbell, PacketRing, produce, RingPump, ShardLane, slotBytesForMtu, UDP_OFFSET, UdpSocket } from '../src/index.js';
import { startWorker } from './workers.js';

const [netnsPath = '/run/netns/wctbench', secondsArg = '3', sizeArg = '1280', gsoArg = '1', windowArg = '512'] = process.argv.slice(2);
const window = Number(windowArg);
const netnsFd = openSync(netnsPath, 'r');
const seconds = Number(secondsArg);
const size = Number(sizeArg);
const offload = gsoArg === '1';
const slotBytes = slotBytesForMtu(1420);

const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd });
const ring = PacketRing.create({ capacity: 4096, slotBytes });
const doorbell = Doorbell.create();
const pumps = [RingPump.udpReader(socket, ring, doorbell, { gro: offload }), RingPump.udpWriter(socket, ring, { gso: offload })];
const shard = startWorker('shard-worker.ts', { ring: ring.sab, doorbell: doorbell.sab, lane: 0, mode: 'identity' });

const peer = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd });
const out = PacketRing.create({ capacity: 4096, slotBytes });
const back = PacketRing.create({ capacity: 4096, slotBytes });
const peerPumps = [RingPump.udpWriter(peer, out, { gso: offload }), RingPump.udpReader(peer, back, Doorbell.create(), { gro: offload })];
const outLane = new ShardLane(out, 0);
const backLane = new ShardLane(back, 0);
const payload = new Uint8Array(size).fill(0x5a);
const to = { family: 4 as const, port: socket.port, addr: Uint8Array.of(127, 0, 0, 1) };

await shard.ready;
let sent = 0;
let received = 0;
const started = process.hrtime.bigint();
const end = Date.now() + seconds * 1000;
while (Date.now() < end) {
  let n = 0;
  while (sent - received < window && n < 64 && produce(out, null, payload, UDP_OFFSET, to)) {
    sent++;
    n++;
  }
  outLane.drain(() => true);
  backLane.drain(() => true);
  const got = consume(back, () => true);
  received += got;
  if (got === 0 && n === 0) await tick();
}
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
const [r, w] = [pumps[0]!.stats(), pumps[1]!.stats()];
console.log(
  JSON.stringify({
    size,
    offload,
    seconds: +elapsed.toFixed(2),
    echoedPerSecond: Math.round(received / elapsed),
    inFlightAtEnd: sent - received,
    echoReader: { packets: r.packets, syscalls: r.syscalls, batches: r.batches, groReceives: r.groReceives, dropsFull: r.dropsFull },
    echoWriter: { packets: w.packets, syscalls: w.syscalls, gsoSends: w.gsoSends, errors: w.errors },
  }),
);
ring.close(doorbell);
for (const p of [...pumps, ...peerPumps]) p.stop();
socket.close();
peer.close();
await shard.exited;
