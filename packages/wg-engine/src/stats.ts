// Drop accounting. Every packet the engine refuses is counted under one
// reason; nothing is logged per packet. Counters live in a Float64Array (exact
// to 2^53) so a later data plane can place them in shared memory unchanged.

export const DROP_REASONS = [
  'malformed', // not one of the four message types, wrong size, reserved bits set
  'oversized', // larger than the largest message we accept
  'mac1', // handshake message with a wrong mac1
  'cookie-required', // under load, no valid mac2: answered with a cookie reply
  'ratelimited', // under load, the source sent too many handshakes
  'handshake-queue-full',
  'handshake-decrypt', // a handshake field failed to authenticate
  'unknown-peer', // an initiation from a static key we do not know
  'low-order-point', // an ephemeral or static key of small order
  'timestamp-replay', // an initiation whose TAI64N is not newer than the last one
  'initiation-flood', // initiations from one peer faster than 50 per second
  'unknown-receiver', // a response, cookie or data message for an index we do not have
  'unexpected-response', // a response to a handshake we are not waiting for
  'cookie-decrypt',
  'no-private-key',
  'transport-decrypt', // a data message that failed to authenticate
  'replay', // a data counter already seen or too old
  'key-expired', // a data message on a keypair past Reject-After-Time or Reject-After-Messages
  'allowed-ips', // a decrypted packet whose source is not in the peer's allowed IPs
  'inner-malformed', // a decrypted payload that is not a well-formed IP packet
  'no-route', // an outgoing packet whose destination no peer allows
  'no-endpoint', // a peer with no known endpoint
  'staged-overflow', // the per-peer queue during a handshake was full: oldest dropped
  'handshake-timeout', // packets staged for a peer whose handshake never completed (Rekey-Attempt-Time)
  'outgoing-malformed', // an outgoing packet that is empty, not IP or too large
  'send-failed', // the UDP socket refused a datagram
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

const INDEX: Record<DropReason, number> = Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as Record<DropReason, number>;

export class DropCounters {
  readonly values: Float64Array;

  constructor(buffer?: ArrayBufferLike, byteOffset = 0) {
    this.values = buffer ? new Float64Array(buffer, byteOffset, DROP_REASONS.length) : new Float64Array(DROP_REASONS.length);
  }

  add(reason: DropReason, n = 1): void {
    this.values[INDEX[reason]]! += n;
  }

  get(reason: DropReason): number {
    return this.values[INDEX[reason]]!;
  }

  total(): number {
    let t = 0;
    for (const v of this.values) t += v;
    return t;
  }

  toJSON(): Record<DropReason, number> {
    return Object.fromEntries(DROP_REASONS.map((r) => [r, this.get(r)])) as Record<DropReason, number>;
  }
}
