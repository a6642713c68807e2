// Per-peer protocol timers, event for event as the kernel's timers.c
// (whitepaper 6.1-6.5). Peers call the event methods as packets move; the
// expiry handlers send through the peer's device.
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX_MS } from './constants.js';
import { LazyTimer, type Clock } from './clock.js';
import { randomUint32 } from './crypto/primitives.js';

/** What the timers need from a peer. */
export interface TimerTarget {
  handshakeAttempts: number;
  needAnotherKeepalive: boolean;
  sentLastMinuteHandshake: boolean;
  persistentKeepalive: number; // seconds, 0 = off
  lastHandshakeWallMs: number;
  readonly isUp: boolean;
  sendHandshakeInitiation(isRetry: boolean): void;
  sendKeepalive(): void;
  dropStaged(): void;
  zeroKeyMaterial(): void;
  wallNow(): number;
}

export function rekeyTimeoutWithJitter(): number {
  return REKEY_TIMEOUT * 1000 + (randomUint32() % REKEY_TIMEOUT_JITTER_MAX_MS);
}

export class PeerTimers {
  readonly retransmitHandshake: LazyTimer;
  readonly sendKeepalive: LazyTimer;
  readonly newHandshake: LazyTimer;
  readonly zeroKeyMaterial: LazyTimer;
  readonly persistentKeepalive: LazyTimer;

  constructor(
    clock: Clock,
    private readonly p: TimerTarget,
  ) {
    this.retransmitHandshake = new LazyTimer(clock, () => this.expiredRetransmitHandshake());
    this.sendKeepalive = new LazyTimer(clock, () => this.expiredSendKeepalive());
    this.newHandshake = new LazyTimer(clock, () => this.p.sendHandshakeInitiation(false));
    this.zeroKeyMaterial = new LazyTimer(clock, () => this.p.zeroKeyMaterial());
    this.persistentKeepalive = new LazyTimer(clock, () => {
      if (this.p.persistentKeepalive) this.p.sendKeepalive();
    });
  }

  private expiredRetransmitHandshake(): void {
    const p = this.p;
    if (p.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      // Rekey-Attempt-Time is over: give up, drop what waited, and forget the keys later.
      this.sendKeepalive.del();
      p.dropStaged();
      if (!this.zeroKeyMaterial.pending) this.zeroKeyMaterial.mod(REJECT_AFTER_TIME * 3 * 1000);
      return;
    }
    p.handshakeAttempts++;
    p.sendHandshakeInitiation(true);
  }

  private expiredSendKeepalive(): void {
    this.p.sendKeepalive();
    if (this.p.needAnotherKeepalive) {
      this.p.needAnotherKeepalive = false;
      this.sendKeepalive.mod(KEEPALIVE_TIMEOUT * 1000);
    }
  }

  /** A data packet (not a keepalive) was sent. */
  dataSent(): void {
    if (!this.newHandshake.pending)
      this.newHandshake.mod((KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * 1000 + (randomUint32() % REKEY_TIMEOUT_JITTER_MAX_MS));
  }

  /** A data packet (not a keepalive) was received. */
  dataReceived(): void {
    if (!this.p.isUp) return;
    if (!this.sendKeepalive.pending) this.sendKeepalive.mod(KEEPALIVE_TIMEOUT * 1000);
    else this.p.needAnotherKeepalive = true;
  }

  /** Any authenticated packet (handshake, keepalive or data) was sent. */
  anyAuthenticatedPacketSent(): void {
    this.sendKeepalive.del();
  }

  /** Any authenticated packet was received. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshake.del();
  }

  /** Any authenticated packet was sent or received. */
  anyAuthenticatedPacketTraversal(): void {
    if (this.p.persistentKeepalive) this.persistentKeepalive.mod(this.p.persistentKeepalive * 1000);
  }

  handshakeInitiated(): void {
    this.retransmitHandshake.mod(rekeyTimeoutWithJitter());
  }

  handshakeComplete(): void {
    this.retransmitHandshake.del();
    this.p.handshakeAttempts = 0;
    this.p.sentLastMinuteHandshake = false;
    this.p.lastHandshakeWallMs = this.p.wallNow();
  }

  sessionDerived(): void {
    this.zeroKeyMaterial.mod(REJECT_AFTER_TIME * 3 * 1000);
  }

  stopAll(): void {
    this.retransmitHandshake.del();
    this.sendKeepalive.del();
    this.newHandshake.del();
    this.zeroKeyMaterial.del();
    this.persistentKeepalive.del();
  }
}
