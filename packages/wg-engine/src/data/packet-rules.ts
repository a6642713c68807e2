// The per-packet rules of WireGuard, written once (as the kernel's send.c and
// receive.c): which datagrams are which message, how long an IP packet is,
// where its addresses sit, when a keypair may no longer carry data, when a
// session must be renewed, and the source check against the allowed IPs.
//
// Each function reads a buffer at an offset and the shared tables (keypairs,
// receiver-index map), never a Peer or a Device, so one implementation serves
// every thread placement: a data-plane Shard (in a worker, or inline on the
// main thread with `workers: 0`) and the Device's own library API
// (receiveUdp / sendPacket, and the staged packets a Peer sends).
import type { AllowedIps, IpFamily } from '../allowed-ips.js';
import {
  KEEPALIVE_TIMEOUT,
  MAX_MESSAGE_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_MIN_SIZE,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
} from '../constants.js';
import type { IndexSlotMap } from '../index-table.js';
import { KEYPAIR_INITIATOR, type KeypairTable } from '../keypair.js';
import { Transport, readU32LE, type MessageKind } from '../messages.js';
import type { DropReason } from '../stats.js';
import { DECRYPT_FAILED, DECRYPT_REPLAY, openInPlace, paddedLength } from './transport.js';

const IPV4_HEADER_MIN = 20;
const IPV6_HEADER_LEN = 40;
/** Where an inner packet's source and destination addresses start. */
export const SRC_OFFSET = { 4: 12, 6: 8 } as const;
export const DST_OFFSET = { 4: 16, 6: 24 } as const;

// ---- datagrams ---------------------------------------------------------------------

/**
 * The message a datagram at b[off, off + len) is, by its type word and exact size
 * (the three reserved bytes must be zero: the whole word is compared), or why it is dropped.
 */
export function datagramKind(b: Uint8Array, off: number, len: number): MessageKind | 'oversized' | 'malformed' {
  if (len > MAX_MESSAGE_SIZE) return 'oversized';
  if (len < 4) return 'malformed';
  switch (readU32LE(b, off)) {
    case MESSAGE_TRANSPORT:
      // No multiple-of-16 check: padding stops at the sender's MTU, which need not be aligned.
      return len >= MESSAGE_TRANSPORT_MIN_SIZE ? 'transport' : 'malformed';
    case MESSAGE_INITIATION:
      return len === MESSAGE_INITIATION_SIZE ? 'initiation' : 'malformed';
    case MESSAGE_RESPONSE:
      return len === MESSAGE_RESPONSE_SIZE ? 'response' : 'malformed';
    case MESSAGE_COOKIE_REPLY:
      return len === MESSAGE_COOKIE_REPLY_SIZE ? 'cookie' : 'malformed';
    default:
      return 'malformed';
  }
}

// ---- inner IP packets ----------------------------------------------------------------

/** The IP version of the packet at b[p] (4 or 6), or 0 when `available` bytes cannot hold its header. */
export function ipFamilyAt(b: Uint8Array, p: number, available: number): 0 | IpFamily {
  if (available <= 0) return 0;
  const v = b[p]! >> 4;
  if (v === 4 && available >= IPV4_HEADER_MIN) return 4;
  if (v === 6 && available >= IPV6_HEADER_LEN) return 6;
  return 0;
}

/** The length the IP header at b[p] declares for the whole packet; 0 when malformed or longer than available. */
export function ipLength(b: Uint8Array, p: number, available: number): number {
  const v = ipFamilyAt(b, p, available);
  let len: number;
  if (v === 4) {
    if ((b[p]! & 0x0f) < 5) return 0;
    len = (b[p + 2]! << 8) | b[p + 3]!;
    if (len < IPV4_HEADER_MIN) return 0;
  } else if (v === 6) {
    len = IPV6_HEADER_LEN + ((b[p + 4]! << 8) | b[p + 5]!);
  } else {
    return 0;
  }
  return len <= available ? len : 0;
}

/**
 * An outgoing packet of len bytes at b[p] may be sealed: a whole IP packet whose
 * transport message, padding included, fits in one datagram a receiver accepts
 * (a 65535-byte IPv4 packet does not, and would be dropped there as oversized).
 */
export function outgoingFits(b: Uint8Array, p: number, len: number, mtu: number): boolean {
  const ipLen = ipLength(b, p, len);
  return ipLen !== 0 && ipLen === len && MESSAGE_TRANSPORT_MIN_SIZE + paddedLength(len, mtu) <= MAX_MESSAGE_SIZE;
}

/** Cryptokey routing on egress: the owner of the packet's destination. */
export function routeOf<T>(routes: AllowedIps<T>, b: Uint8Array, p: number): T | undefined {
  const family = b[p]! >> 4;
  if (family !== 4 && family !== 6) return undefined;
  return routes.lookup(family, b, p + DST_OFFSET[family]);
}

/**
 * The source check on ingress: the decrypted payload at b[p, p + plain) must be an
 * IP packet from an address `owner` is allowed. Returns the packet's length (the
 * padding after it is cut off) or why it is dropped.
 */
export function checkInner<T>(
  routes: AllowedIps<T>,
  b: Uint8Array,
  p: number,
  plain: number,
  owner: T,
): number | 'inner-malformed' | 'allowed-ips' {
  const len = ipLength(b, p, plain);
  if (len === 0) return 'inner-malformed';
  const family = (b[p]! >> 4) as IpFamily;
  if (routes.lookup(family, b, p + SRC_OFFSET[family]) !== owner) return 'allowed-ips';
  return len;
}

// ---- keypairs: age and counters --------------------------------------------------------

const REJECT_AFTER_TIME_MS = REJECT_AFTER_TIME * 1000;
const REKEY_AFTER_TIME_MS = REKEY_AFTER_TIME * 1000;
const KEEP_FRESH_RECEIVING_MS = (REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) * 1000;

/** Reject-After-Time: a keypair this old carries no data either way. */
export function keypairExpired(kps: KeypairTable, slot: number, now: number): boolean {
  return now - kps.createdMs(slot) >= REJECT_AFTER_TIME_MS;
}

/** The keypair in slot (-1: none) may seal now: live, younger than Reject-After-Time, counters left. */
export function canSendWith(kps: KeypairTable, slot: number, now: number): boolean {
  return slot >= 0 && kps.isLive(slot) && !keypairExpired(kps, slot, now) && kps.sendCounter(slot) < REJECT_AFTER_MESSAGES;
}

/**
 * Keep-fresh on send: after Rekey-After-Messages, or (for the initiator only) after
 * Rekey-After-Time, the session is renewed. `next` is the next counter to use, as the kernel reads it.
 */
export function rekeyAfterSending(kps: KeypairTable, slot: number, next: bigint, now: number): boolean {
  return next > REKEY_AFTER_MESSAGES || ((kps.flags(slot) & KEYPAIR_INITIATOR) !== 0 && now - kps.createdMs(slot) >= REKEY_AFTER_TIME_MS);
}

/** Keep-fresh on receive: the initiator renews shortly before Reject-After-Time, so its peer never has to. */
export function rekeyAfterReceiving(kps: KeypairTable, slot: number, now: number): boolean {
  return (kps.flags(slot) & KEYPAIR_INITIATOR) !== 0 && now - kps.createdMs(slot) >= KEEP_FRESH_RECEIVING_MS;
}

// ---- transport messages on receive ------------------------------------------------------

/** What openTransport found: the keypair slot (and its generation) and the plaintext length. */
export interface Opened {
  slot: number;
  gen: number;
  plain: number;
}

/**
 * Receives the transport message at b[msg, msg + len) (datagramKind said
 * 'transport'): finds its keypair by receiver index (one load in the shared map,
 * confirmed against the slot's own index), refuses a keypair past
 * Reject-After-Time, authenticates and decrypts in place (the plaintext then sits
 * at b[msg + 16, msg + 16 + plain)), checks the replay window, and makes sure the
 * keypair was not retired meanwhile (its keys may have been zeroed). Fills out;
 * returns null, or why the message is dropped.
 */
export function openTransport(
  kps: KeypairTable,
  slots: IndexSlotMap,
  b: Uint8Array,
  msg: number,
  len: number,
  now: number,
  out: Opened,
): DropReason | null {
  const receiver = readU32LE(b, msg + Transport.RECEIVER);
  const slot = slots.slotOf(receiver);
  if (slot < 0 || kps.localIndex(slot) !== receiver || !kps.isLive(slot)) return 'unknown-receiver';
  const gen = kps.generation(slot);
  if (keypairExpired(kps, slot, now)) return 'key-expired';
  const plain = openInPlace(kps, slot, b, msg, len);
  if (plain === DECRYPT_FAILED) return 'transport-decrypt';
  if (plain === DECRYPT_REPLAY) return 'replay';
  if (kps.generation(slot) !== gen) return 'key-expired';
  out.slot = slot;
  out.gen = gen;
  out.plain = plain;
  return null;
}

/** Where a transport message's payload starts. */
export const PAYLOAD = Transport.PAYLOAD;

/** datagramKind for a whole datagram: null when it is none of the four messages. */
export function classify(msg: Uint8Array): MessageKind | null {
  const kind = datagramKind(msg, 0, msg.length);
  return kind === 'oversized' || kind === 'malformed' ? null : kind;
}
