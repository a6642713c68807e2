// The room a shard needs around each packet in a ring slot, from the message
// format. @wirecage/tun lays out slots and knows nothing of WireGuard: the
// plane passes it these when it creates its rings.
import { OFFLOAD_READ_BYTES, slotBytesFor } from '@wirecage/tun';
import { AEAD_TAG_LEN, MESSAGE_PADDING_MULTIPLE, MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_MIN_SIZE } from '../constants.js';

/** Egress: the TUN reader stores the IP packet this far in, and the shard seals the header into the gap. */
export const EGRESS_HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;

/**
 * After the packet: padding to a multiple of 16 and the tag on egress. An
 * ingress slot (no headroom) holds the whole datagram, header + padded
 * packet + tag, in the same bytes; the 64 more let a peer whose MTU is up to
 * 64 above ours through.
 */
const TAILROOM = MESSAGE_PADDING_MULTIPLE - 1 + AEAD_TAG_LEN + 64;

/** IPv4 with options (60) and TCP with options (60): the most headers each segment of a super-packet carries. */
const MAX_SEGMENT_HEADERS = 60 + 60;
/**
 * Segments of one super-packet the egress slot has room for, each sealed with
 * its own headers, message header, padding and tag (~48 at MSS 1380; a
 * super-packet cut finer is dropped as outgoing-malformed).
 */
const MAX_SEGMENTS = 64;

/** Slot bytes of both rings for a TUN without offloads (and of the ingress ring with them). */
export function slotBytesForMtu(mtu: number): number {
  return slotBytesFor(mtu, { headroom: EGRESS_HEADROOM, tailroom: TAILROOM });
}

/**
 * Slot bytes of the egress ring of an offloading TUN: a 64 KiB super-packet
 * after the headroom, segmented in place from the start of the data area
 * (sealSegments), which adds per segment its headers, header, padding and tag.
 */
export function slotBytesForOffload(): number {
  const growth = MAX_SEGMENTS * (MAX_SEGMENT_HEADERS + MESSAGE_TRANSPORT_MIN_SIZE + MESSAGE_PADDING_MULTIPLE - 1);
  return slotBytesFor(OFFLOAD_READ_BYTES, { headroom: EGRESS_HEADROOM, tailroom: growth });
}
