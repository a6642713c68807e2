// What the main thread and the shards tell each other. Per-packet state is in
// shared memory; these messages carry only the rare events.
import type { IpFamily } from '../allowed-ips.js';

/** Everything a shard needs, all of it shared memory but the numbers. */
export interface ShardInit {
  index: number;
  shards: number;
  mtu: number;
  /** The TUN carries a virtio_net_hdr on every packet (offloads on). */
  vnetHdr: boolean;
  /**
   * The shard's own fds: it reads `tun` (its TUN queue; null without a TUN) and
   * `udp` (its socket of the SO_REUSEPORT group) into its own rings, and writes
   * what it opened to `tunOut` (the same queue, or /dev/null without a TUN) and
   * what it sealed to `udp`. It dups them: the plane's owner keeps the originals.
   */
  fds: { tun: number | null; tunOut: number; udp: number };
  /** The main thread's performance.timeOrigin, to read keypair ages on the same clock. */
  timeOrigin: number;
  keypairs: SharedArrayBuffer;
  keypairCapacity: number;
  indexMap: SharedArrayBuffer;
  indexBuckets: number;
  peers: SharedArrayBuffer;
  peerCapacity: number;
  counters: SharedArrayBuffer;
  /** DROP_REASONS.length Float64 per shard. */
  drops: SharedArrayBuffer;
  /** SHARD_COUNTERS.length Float64 per shard. */
  stats: SharedArrayBuffer;
  control: SharedArrayBuffer;
  /** This shard's TUN -> UDP ring. */
  egress: SharedArrayBuffer;
  /** This shard's UDP -> TUN ring. */
  ingress: SharedArrayBuffer;
}

/** An allowed-IPs entry as shards receive it: the owner is a peer id. */
export interface RouteEntry {
  family: IpFamily;
  address: Uint8Array;
  prefix: number;
  peer: number;
}

/** Address words as a ring slot holds them: family, port, addr x4, scope. */
export type AddressWords = number[];

export type ToMain =
  /** A handshake message (initiation, response or cookie reply) for the control plane. */
  | { t: 'handshake'; msg: Uint8Array; from: AddressWords }
  /** An outgoing packet for a peer with no usable session: stage it and handshake. */
  | { t: 'stage'; peer: number; packet: Uint8Array }
  /** A responder's keypair authenticated its first packet. */
  | { t: 'confirm'; peer: number; slot: number; gen: number }
  /** The peer's authenticated packets come from a new address. */
  | { t: 'roam'; peer: number; from: AddressWords }
  /** Time or message count says this session should be renewed. */
  | { t: 'rekey'; peer: number };

export type ToShard =
  /** Every allowed IP: a shard's starting table. */
  | { t: 'routes'; entries: RouteEntry[] }
  /**
   * One peer's allowed IPs now (none once it is removed). Applied in order, as the
   * Device applied them: a prefix given to this peer moves from its old owner.
   */
  | { t: 'peer-routes'; peer: number; entries: RouteEntry[] }
  | { t: 'crash' };

// Control words (Int32) shared by the main thread and every shard.
export const CTL_CLOSED = 0;
/** Bumped by the main thread after it posts a configuration message to every shard. */
export const CTL_CONFIG_GEN = 1;
/** Messages posted to the main thread and not yet handled. */
export const CTL_INFLIGHT = 2;
/** Bit k: shard k's worker is up and serving (set by the shard as it starts, never cleared). */
export const CTL_STARTED = 3;
export const CONTROL_WORDS = 4;
export const MAX_INFLIGHT = 1024;

/** Per-shard totals (Float64), read by metrics. */
export const SHARD_COUNTERS = ['egressPackets', 'ingressPackets', 'coalescedPackets'] as const;
