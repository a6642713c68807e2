// A TUN in a lab namespace that the lab's kernel routes a peer through, and
// the run-to-completion loop that plays that peer for ping: when the event
// loop sees the queue readable, a RingPoller reads a batch, the echo requests
// become replies in place, and a RingEmitter writes them back, all on this
// thread (what a data-plane shard with workers 0 does).
import assert from 'node:assert/strict';
import {
  RingEmitter,
  RingPoller,
  SlotCursor,
  Tun,
  watchReadable,
  type PacketRing,
  type StepOptions,
  type StepStats,
  type TunOptions,
} from '../src/index.js';
import type { NetnsLab } from './lab.js';
import { echoReplyInPlace } from './packets.js';

/** The TUN's own address (a /24), and the peer behind it that the lab pings. */
export const TUN_ADDR = '198.18.0.1';
export const PEER_ADDR = '198.18.0.2';

let names = 0;

/** A Tun in `lab`, up, with TUN_ADDR/24. */
export function openLabTun(lab: NetnsLab, options: Omit<TunOptions, 'name' | 'netnsFd'> = {}): Tun {
  const tun = Tun.open({ name: `wct${process.pid % 100000}t${names++}`, netnsFd: lab.fd, ...options });
  lab.linkUp(tun.name);
  lab.addAddress(tun.name, `${TUN_ADDR}/24`);
  return tun;
}

export interface LabReader {
  stats(): StepStats;
  stop(): void;
}

/**
 * Reads `fd` (a TUN queue or UDP socket) into `ring` whenever the event loop
 * sees it readable, until stop(); `then` runs after each read that published.
 */
export function readWhenReadable(
  kind: 'tun' | 'udp',
  fd: number,
  ring: PacketRing,
  options: StepOptions = {},
  then?: () => void,
): LabReader {
  const poller = kind === 'tun' ? RingPoller.tun(fd, ring, options) : RingPoller.udp(fd, ring, options);
  const watch = watchReadable(fd, (err) => {
    if (err) throw err;
    if (poller.read() > 0) then?.();
  });
  return {
    stats: () => poller.stats(),
    stop: () => {
      watch.close();
      poller.close();
    },
  };
}

export interface EchoLoop {
  reader: LabReader;
  emitter: RingEmitter;
  /** Echo requests turned into replies. */
  readonly echoed: number;
  stop(): void;
}

/**
 * Answers the lab's pings to PEER_ADDR on queue `queue` of `tun`, through
 * `ring` (after the virtio_net_hdr of an offloading Tun, which stays as it came: all zero).
 */
export function startEchoLoop(tun: Tun, ring: PacketRing, queue = 0): EchoLoop {
  const fd = tun.queueFd(queue);
  const cursor = new SlotCursor(ring);
  const emitter = RingEmitter.tun(fd, ring);
  const skip = tun.offload.vnetHdr ? 10 : 0;
  let echoed = 0;
  const reader = readWhenReadable('tun', fd, ring, {}, () => {
    cursor.drain((seq) => {
      const at = ring.dataOffset(seq) + ring.offset(seq);
      const ok = echoReplyInPlace(ring.u8.subarray(at + skip, at + ring.length(seq)));
      if (ok) echoed++;
      return ok;
    });
    emitter.emit();
  });
  return {
    reader,
    emitter,
    get echoed() {
      return echoed;
    },
    stop: () => {
      reader.stop();
      emitter.close();
    },
  };
}

/** `count` pings from the lab to PEER_ADDR, 10 ms apart: fails unless every one is answered. */
export async function pingPeer(lab: NetnsLab, count: number): Promise<void> {
  const ping = await lab.exec('ping', '-c', String(count), '-i', '0.01', '-W', '1', PEER_ADDR);
  assert.equal(ping.code, 0, ping.stdout);
  assert.match(ping.stdout, new RegExp(`${count} packets transmitted, ${count} received, 0% packet loss`));
}
