// The receive path (the kernel's receive.c). Handshake messages go through a
// bounded queue drained off the socket callback, so a flood cannot starve the
// data path and the queue's fill level tells us when we are under load.
// Transport messages given to Device.receiveUdp() (the library API; the data
// plane's shards take them otherwise) are handled inline with the rules of
// data/packet-rules.ts, the ones a shard applies: lookup by receiver index,
// expiry, decrypt, replay check, source check; then roaming and timers here.
import { UNDER_LOAD_AFTER_TIME_MS, UNDER_LOAD_QUEUE_THRESHOLD } from './constants.js';
import { PAYLOAD, checkInner, openTransport, type Opened } from './data/packet-rules.js';
import type { Device } from './device.js';
import { Endpoint } from './endpoint.js';
import { CookieReply, Response, readU32LE, type MessageKind } from './messages.js';
import { consumeInitiation, consumeResponse, type StaticIdentity } from './noise.js';
import type { Peer } from './peer.js';
import type { Keypair } from './keypair.js';

interface QueuedHandshake {
  kind: Exclude<MessageKind, 'transport'>;
  msg: Buffer;
  address: string;
  port: number;
}

// Handshakes processed per turn of the event loop before yielding to I/O.
const DRAIN_BATCH = 64;

export class HandshakeQueue {
  private queue: QueuedHandshake[] = [];
  private head = 0;
  private scheduled = false;
  private lastUnderLoad = -Infinity;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly device: Device,
    private readonly capacity: number,
  ) {}

  get length(): number {
    return this.queue.length - this.head;
  }

  get underLoad(): boolean {
    const now = this.device.clock.now();
    if (this.length >= UNDER_LOAD_QUEUE_THRESHOLD) this.lastUnderLoad = now;
    return now - this.lastUnderLoad < UNDER_LOAD_AFTER_TIME_MS;
  }

  push(kind: QueuedHandshake['kind'], msg: Buffer, address: string, port: number): void {
    if (this.length >= this.capacity) {
      this.device.drops.add('handshake-queue-full');
      return;
    }
    this.queue.push({ kind, msg, address, port });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
  }

  settled(): Promise<void> {
    if (this.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private drain(): void {
    // Load is judged before this batch is taken off, as wireguard-go does.
    const underLoad = this.underLoad;
    const end = Math.min(this.queue.length, this.head + DRAIN_BATCH);
    for (; this.head < end; this.head++) {
      const item = this.queue[this.head]!;
      try {
        handleHandshakeMessage(this.device, item, underLoad);
      } catch (err) {
        // Nothing thrown by one message may stop the engine; count it as malformed.
        this.device.drops.add('malformed');
        this.device.logger.debug(`handshake message failed: ${(err as Error).message}`);
      }
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.scheduled = false;
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    } else {
      if (this.head > 1024) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      setImmediate(() => this.drain());
    }
  }
}

function handleHandshakeMessage(dev: Device, item: QueuedHandshake, underLoad: boolean): void {
  const { kind, msg, address, port } = item;
  if (kind === 'cookie') {
    handleCookieReply(dev, msg);
    return;
  }
  const identity = dev.identity;
  if (!identity) {
    dev.drops.add('no-private-key');
    return;
  }
  const src = admitHandshake(dev, msg, address, port, underLoad);
  if (!src) return;
  if (kind === 'initiation') handleInitiation(dev, identity, msg, src);
  else handleResponse(dev, identity, msg, src);
}

function handleCookieReply(dev: Device, msg: Buffer): void {
  const entry = dev.index.get(readU32LE(msg, CookieReply.RECEIVER));
  if (!entry) {
    dev.drops.add('unknown-receiver');
    return;
  }
  if (!entry.peer.cookies.consumeReply(msg)) dev.drops.add('cookie-decrypt');
}

/**
 * The checks before any Noise work: mac1, and under load mac2 (else a cookie reply) and the rate limit.
 * The sender's endpoint when the message may go on, null when it was dropped.
 */
function admitHandshake(dev: Device, msg: Buffer, address: string, port: number, underLoad: boolean): Endpoint | null {
  if (!dev.cookieChecker.checkMac1(msg)) {
    dev.drops.add('mac1');
    return null;
  }
  const src = Endpoint.of(address, port);
  if (!underLoad) return src;
  if (!dev.cookieChecker.checkMac2(msg, src)) {
    dev.sendUdp(dev.cookieChecker.createReply(msg, src), src);
    dev.drops.add('cookie-required');
    return null;
  }
  if (!dev.rateLimiter.allow(src.address)) {
    dev.drops.add('ratelimited');
    return null;
  }
  return src;
}

function handleInitiation(dev: Device, identity: StaticIdentity, msg: Buffer, src: Endpoint): void {
  const res = consumeInitiation(identity, msg, (key) => dev.getPeer(key)?.handshake, dev.clock.now());
  if (!res.ok) {
    dev.drops.add(res.reason);
    return;
  }
  const peer = dev.getPeer(res.value.remoteStatic)!;
  handshakeAuthenticated(peer, msg, src);
  peer.sendHandshakeResponse();
}

function handleResponse(dev: Device, identity: StaticIdentity, msg: Buffer, src: Endpoint): void {
  // The receiver index must name a handshake of ours awaiting a response.
  const entry = dev.index.get(readU32LE(msg, Response.RECEIVER));
  if (!entry || entry.kind !== 'handshake') {
    dev.drops.add('unknown-receiver');
    return;
  }
  const peer = entry.peer;
  const res = consumeResponse(identity, peer.handshake, msg);
  if (!res.ok) {
    dev.drops.add(res.reason);
    return;
  }
  handshakeAuthenticated(peer, msg, src);
  if (!peer.beginSession()) return;
  peer.timers.handshakeComplete();
  dev.handshakeCompleted(peer);
  // Confirms the session to the responder and flushes what waited for it.
  peer.sendKeepalive();
}

/** A handshake message that authenticated: the peer roams to its source, and it counts as received traffic. */
function handshakeAuthenticated(peer: Peer, msg: Buffer, src: Endpoint): void {
  peer.endpoint = src;
  peer.rxBytes += msg.length;
  peer.timers.anyAuthenticatedPacketReceived();
  peer.timers.anyAuthenticatedPacketTraversal();
}

/** The first packet authenticated under a responder's keypair confirms the session: now it may send. */
export function confirmSession(dev: Device, peer: Peer, kp: Keypair<Peer>): void {
  if (!peer.receivedWith(kp)) return;
  peer.timers.handshakeComplete();
  dev.handshakeCompleted(peer);
  peer.sendStaged();
}

const opened: Opened = { slot: 0, gen: 0, plain: 0 };

/** A transport message through the Device's library API: the same rules a data-plane shard applies (data/packet-rules.ts). */
export function receiveTransport(dev: Device, msg: Buffer, address: string, port: number): void {
  const why = openTransport(dev.keypairs, dev.index.slots, msg, 0, msg.length, dev.clock.now(), opened);
  if (why !== null) {
    dev.drops.add(why);
    return;
  }
  const plainLen = opened.plain;
  // The main thread's handle on the slot the shared map named.
  const entry = dev.index.get(dev.keypairs.localIndex(opened.slot));
  if (!entry || entry.kind !== 'keypair') {
    dev.drops.add('unknown-receiver');
    return;
  }
  const { peer, keypair: kp } = entry;

  // Authenticated: roam to wherever it came from.
  if (!peer.endpoint || !peer.endpoint.equals(address, port)) peer.endpoint = Endpoint.of(address, port);
  peer.rxBytes += msg.length;
  confirmSession(dev, peer, kp);
  peer.keepKeyFreshReceiving();
  peer.timers.anyAuthenticatedPacketReceived();
  peer.timers.anyAuthenticatedPacketTraversal();

  if (plainLen === 0) return; // keepalive: nothing to deliver, and no keepalive in answer to it
  // Any authenticated data is owed a keepalive, even if it is dropped below: otherwise
  // the sender hears nothing and starts a needless handshake (kernel and wireguard-go agree).
  peer.timers.dataReceived();

  const len = checkInner(dev.allowedIps, msg, PAYLOAD, plainLen, peer);
  if (typeof len !== 'number') {
    dev.drops.add(len);
    return;
  }
  dev.io.writeTun(msg.subarray(PAYLOAD, PAYLOAD + len));
}
