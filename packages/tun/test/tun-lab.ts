// A TUN in a lab namespace that the lab's kernel routes a peer through, and
// the pipeline that plays that peer for ping: tunReader -> a worker shard
// turning echo requests into replies and writing them back (its RingEmitter),
// all on one ring.
import assert from 'node:assert/strict';
import { Doorbell, RingPump, Tun, type PacketRing, type TunOptions } from '../src/index.js';
import type { NetnsLab } from './lab.js';
import { startShard, type ShardResult, type TestWorker } from './workers.js';

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

export interface EchoPipeline {
  doorbell: Doorbell;
  reader: RingPump;
  /** Ends once the ring is closed (`ring.close(doorbell)`); its result holds its emitter's stats. */
  shard: TestWorker<ShardResult>;
}

/**
 * tunReader -> shard-worker.ts in 'icmp-echo' mode, writing to the same queue,
 * on `ring`, for the queue of `target` (the shard skips the virtio_net_hdr of
 * an offloading Tun). Closing the ring ends the shard; closing the Tun stops the reader.
 */
export function startEchoPipeline(target: { tun: Tun; queue?: number }, ring: PacketRing): EchoPipeline {
  const doorbell = Doorbell.create();
  const reader = RingPump.tunReader(target, ring, doorbell);
  const emitTunFd = target.tun.queueFd(target.queue ?? 0);
  const shard = startShard(ring, doorbell, 'icmp-echo', { vnetHdr: target.tun.offload.vnetHdr, emitTunFd });
  return { doorbell, reader, shard };
}

/** `count` pings from the lab to PEER_ADDR, 10 ms apart: fails unless every one is answered. */
export async function pingPeer(lab: NetnsLab, count: number): Promise<void> {
  const ping = await lab.exec('ping', '-c', String(count), '-i', '0.01', '-W', '1', PEER_ADDR);
  assert.equal(ping.code, 0, ping.stdout);
  assert.match(ping.stdout, new RegExp(`${count} packets transmitted, ${count} received, 0% packet loss`));
}
