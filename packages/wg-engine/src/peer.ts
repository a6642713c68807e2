// A peer: its handshake, its three keypair slots (previous/current/next), its
// endpoint, the packets staged while no session exists, counters and timers.
// What a peer sends from the main thread lives here too (staged packets,
// keepalives, handshakes: the kernel's send.c), because every step of it reads
// and updates this state; the per-packet rules are data/packet-rules.ts's.
import { MAX_STAGED_PACKETS, REKEY_TIMEOUT } from './constants.js';
import type { Clock } from './clock.js';
import { CookieGenerator } from './cookie.js';
import { canSendWith, rekeyAfterReceiving, rekeyAfterSending } from './data/packet-rules.js';
import { encryptTransport } from './data/transport.js';
import type { Endpoint } from './endpoint.js';
import type { IndexTable } from './index-table.js';
import { KEYPAIR_INITIATOR, KEYPAIR_UNCONFIRMED, Keypair, type KeypairTable } from './keypair.js';
import type { PeerTable } from './data/peer-table.js';
import type { Logger } from './log.js';
import { Handshake, createInitiation, createResponse, deriveSession, type SessionKeys, type StaticIdentity } from './noise.js';
import { PeerTimers, type TimerTarget } from './timers.js';
import type { DropCounters } from './stats.js';
import { keyToBase64 } from './crypto/keys.js';

/** The device services a peer uses. */
export interface PeerHost {
  readonly clock: Clock;
  readonly identity: StaticIdentity | null;
  readonly mtu: number;
  readonly keypairs: KeypairTable;
  /** The shared mirror data-plane shards read: send keypair and endpoint per peer id. */
  readonly peerTable: PeerTable;
  readonly index: IndexTable<Peer, Keypair<Peer>>;
  readonly drops: DropCounters;
  readonly logger: Logger;
  readonly isUp: boolean;
  sendUdp(msg: Buffer, to: Endpoint): boolean;
  handshakeCompleted(peer: Peer): void;
}

export class Peer implements TimerTarget {
  readonly handshake: Handshake;
  readonly cookies: CookieGenerator;
  readonly timers: PeerTimers;
  previous: Keypair<Peer> | null = null;
  current: Keypair<Peer> | null = null;
  next: Keypair<Peer> | null = null;
  private _endpoint: Endpoint | null = null;
  persistentKeepalive = 0;
  rxBytes = 0;
  txBytes = 0;
  lastHandshakeWallMs = 0;
  lastSentHandshake = -Infinity;
  handshakeAttempts = 0;
  sentLastMinuteHandshake = false;
  needAnotherKeepalive = false;
  private staged: Uint8Array[] = [];
  private removed = false;

  constructor(
    private readonly host: PeerHost,
    readonly publicKey: Buffer,
    /** Small integer naming this peer in shared tables (reused after removal). */
    readonly id: number,
  ) {
    host.peerTable.reset(id);
    this.handshake = new Handshake(publicKey);
    this.handshake.precompute(host.identity);
    this.cookies = new CookieGenerator(publicKey, host.clock);
    this.timers = new PeerTimers(host.clock, this);
  }

  get endpoint(): Endpoint | null {
    return this._endpoint;
  }

  set endpoint(ep: Endpoint | null) {
    if (ep === this._endpoint) return;
    this._endpoint = ep;
    this.host.peerTable.setEndpoint(this.id, ep);
  }

  /** A short, non-secret name for logs. */
  get name(): string {
    return keyToBase64(this.publicKey).slice(0, 8);
  }

  get isUp(): boolean {
    return this.host.isUp && !this.removed;
  }

  get stagedCount(): number {
    return this.staged.length;
  }

  wallNow(): number {
    return this.host.clock.wallNow();
  }

  // ---- send path ---------------------------------------------------------

  /** Queues an outgoing IP packet and sends whatever can be sent. The caller may reuse packet afterwards. */
  send(packet: Uint8Array): void {
    this.stage(packet);
    this.sendStaged();
    // Encrypting copies; only a packet left waiting for a session needs its own copy.
    const last = this.staged.length - 1;
    if (last >= 0 && this.staged[last] === packet) this.staged[last] = Buffer.from(packet);
  }

  private stage(packet: Uint8Array): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) {
      this.staged.shift();
      this.host.drops.add('staged-overflow');
    }
    this.staged.push(packet);
  }

  dropStaged(): void {
    if (this.staged.length) this.host.drops.add('handshake-timeout', this.staged.length);
    this.staged = [];
  }

  sendKeepalive(): void {
    if (this.staged.length === 0) this.stage(new Uint8Array(0));
    this.sendStaged();
  }

  /** Encrypts and sends the staged packets with the current keypair, or starts a handshake for them. */
  sendStaged(): void {
    if (!this.isUp || this.staged.length === 0) return;
    const kp = this.current;
    const now = this.host.clock.now();
    if (!kp || !canSendWith(this.host.keypairs, kp.slot, now)) {
      this.sendHandshakeInitiation(false);
      return;
    }
    const ep = this.endpoint;
    if (!ep) {
      this.host.drops.add('no-endpoint', this.staged.length);
      this.staged = [];
      return;
    }
    let sentData = false;
    let sentAny = false;
    let i = 0;
    for (; i < this.staged.length; i++) {
      const plain = this.staged[i]!;
      const msg = encryptTransport(this.host.keypairs, kp.slot, kp.remoteIndex, plain, this.host.mtu);
      if (!msg) break; // counter exhausted: keep the rest for the next session
      if (this.host.sendUdp(msg, ep)) {
        this.txBytes += msg.length;
        sentAny = true;
        if (plain.length) sentData = true;
      }
    }
    this.staged = i === this.staged.length ? [] : this.staged.slice(i);
    if (sentAny) {
      this.timers.anyAuthenticatedPacketTraversal();
      this.timers.anyAuthenticatedPacketSent();
      if (sentData) this.timers.dataSent();
    }
    if (this.staged.length) {
      this.sendHandshakeInitiation(false);
      return;
    }
    this.keepKeyFreshSending(kp);
  }

  private keepKeyFreshSending(kp: Keypair<Peer>): void {
    if (rekeyAfterSending(this.host.keypairs, kp.slot, kp.sendCounter, this.host.clock.now())) this.sendHandshakeInitiation(false);
  }

  /** A shard saw a reason to renew the session (its age or message count): check both as the send and receive paths do. */
  keepKeyFresh(): void {
    const kp = this.current;
    if (!kp) return;
    this.keepKeyFreshSending(kp);
    this.keepKeyFreshReceiving();
  }

  /** Called after authenticating a data packet: the initiator rekeys shortly before Reject-After-Time. */
  keepKeyFreshReceiving(): void {
    const kp = this.current;
    if (!kp || this.sentLastMinuteHandshake) return;
    if (rekeyAfterReceiving(this.host.keypairs, kp.slot, this.host.clock.now())) {
      this.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(false);
    }
  }

  sendHandshakeInitiation(isRetry: boolean): void {
    if (!isRetry) this.handshakeAttempts = 0;
    const now = this.host.clock.now();
    // At most one initiation per Rekey-Timeout; retries are spaced by the timer.
    if (now - this.lastSentHandshake < REKEY_TIMEOUT * 1000 || !this.isUp) return;
    const identity = this.host.identity;
    if (!identity) {
      this.host.drops.add('no-private-key');
      return;
    }
    this.lastSentHandshake = now;
    this.releaseHandshakeIndex();
    const index = this.host.index.insert({ kind: 'handshake', peer: this });
    const msg = createInitiation(identity, this.handshake, index, this.host.clock.wallNow());
    if (!msg) {
      this.host.index.delete(index);
      this.host.drops.add('low-order-point');
      return;
    }
    this.cookies.addMacs(msg);
    this.host.logger.debug(`peer ${this.name}: sending handshake initiation${isRetry ? ` (retry ${this.handshakeAttempts})` : ''}`);
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    if (this.endpoint) {
      if (this.host.sendUdp(msg, this.endpoint)) this.txBytes += msg.length;
    } else {
      this.host.drops.add('no-endpoint');
    }
    this.timers.handshakeInitiated();
  }

  /** Answers the initiation the handshake just consumed, and installs the responder's keypair as next. */
  sendHandshakeResponse(): void {
    if (!this.endpoint) return;
    // As the kernel does: a responder waits Rekey-Timeout before initiating itself, so
    // its packets wait for the initiator's confirmation instead of crossing handshakes.
    this.lastSentHandshake = this.host.clock.now();
    this.releaseHandshakeIndex();
    const index = this.host.index.insert({ kind: 'handshake', peer: this });
    const msg = createResponse(this.handshake, index);
    if (!msg) {
      this.host.index.delete(index);
      this.host.drops.add('low-order-point');
      return;
    }
    this.cookies.addMacs(msg);
    if (!this.beginSession()) return;
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    if (this.host.sendUdp(msg, this.endpoint)) this.txBytes += msg.length;
  }

  /** Derives the session from a finished handshake and rotates keypairs (kernel: wg_noise_handshake_begin_session). */
  beginSession(): boolean {
    const keys = deriveSession(this.handshake);
    if (!keys) return false;
    const kp = this.installKeypair(keys);
    if (!kp) return false;
    this.timers.sessionDerived();
    return true;
  }

  private installKeypair(keys: SessionKeys): Keypair<Peer> | null {
    const now = this.host.clock.now();
    const slot = this.host.keypairs.install(keys.sendKey, keys.receiveKey, now, {
      peerId: this.id,
      localIndex: keys.localIndex,
      remoteIndex: keys.remoteIndex,
      flags: keys.isInitiator ? KEYPAIR_INITIATOR : KEYPAIR_UNCONFIRMED,
    });
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    if (slot < 0) {
      this.host.index.delete(keys.localIndex);
      this.host.logger.warn(`keypair table full; peer ${this.name} cannot start a session`);
      return null;
    }
    const kp = new Keypair<Peer>(this.host.keypairs, slot, this, now, keys.isInitiator, keys.localIndex, keys.remoteIndex);
    this.host.index.replace(keys.localIndex, { kind: 'keypair', peer: this, keypair: kp });
    if (kp.isInitiator) {
      // Shards read the send slot without locks: point them at the new keypair before
      // the old ones are zeroed and their slots reused.
      const old = this.current;
      const stale = this.previous;
      this.previous = this.next ?? old;
      this.current = kp;
      this.publishSendSlot();
      if (this.next) {
        this.next = null;
        this.retire(old);
      }
      this.retire(stale);
    } else {
      // The responder may not send on a new keypair until the initiator has used it.
      this.retire(this.next);
      this.next = kp;
      this.retire(this.previous);
      this.previous = null;
    }
    return kp;
  }

  /** A data packet authenticated under kp; confirms a pending responder keypair. Returns true when it did. */
  receivedWith(kp: Keypair<Peer>): boolean {
    if (kp !== this.next) return false;
    this.host.keypairs.clearFlags(kp.slot, KEYPAIR_UNCONFIRMED);
    this.retire(this.previous);
    this.previous = this.current;
    this.current = kp;
    this.next = null;
    this.publishSendSlot();
    return true;
  }

  private publishSendSlot(): void {
    this.host.peerTable.setSendSlot(this.id, this.current ? this.current.slot : -1);
  }

  private retire(kp: Keypair<Peer> | null): void {
    if (!kp) return;
    this.host.index.delete(kp.localIndex);
    this.host.keypairs.retire(kp.slot);
  }

  private releaseHandshakeIndex(): void {
    const idx = this.handshake.localIndex;
    if (idx && this.host.index.get(idx)?.kind === 'handshake') this.host.index.delete(idx);
  }

  /** Forgets every session key and the handshake in progress (Reject-After-Time x 3 of silence, or removal). */
  zeroKeyMaterial(): void {
    const kps = [this.previous, this.current, this.next];
    this.previous = this.current = this.next = null;
    this.publishSendSlot();
    for (const kp of kps) this.retire(kp);
    this.releaseHandshakeIndex();
    this.handshake.clear();
  }

  /** Stops timers, drops staged packets and zeroes keys; the peer is unusable afterwards. */
  remove(): void {
    this.removed = true;
    this.timers.stopAll();
    this.staged = [];
    this.zeroKeyMaterial();
  }

  /** Interface down: like remove, but the peer stays configured. */
  reset(): void {
    this.timers.stopAll();
    this.staged = [];
    this.zeroKeyMaterial();
    this.lastSentHandshake = -Infinity;
  }
}
