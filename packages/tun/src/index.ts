export { Tun, type TunOptions, type TunOffload, type PacketHandler, type ErrorHandler } from './tun.js';
export { TunError } from './errors.js';
export type { QueueStats, TunStats } from './stats.js';
export {
  PacketRing,
  RingCtl,
  SlotField,
  SlotState,
  RING_MAGIC,
  RING_CONTROL_BYTES,
  SLOT_HEADER_BYTES,
  OFFLOAD_READ_BYTES,
  slotBytesFor,
  type SlotRoom,
  type PacketRingOptions,
  type RingStats,
  type SlotPeer,
} from './ring.js';
export { SlotCursor } from './slot-cursor.js';
export { UdpSocket, type UdpFamily, type UdpSocketOptions } from './udp-socket.js';
export type { StepOptions, StepStats } from './inline-step.js';
export { RingEmitter, type EmitterKind } from './emitter.js';
export {
  VNET_HDR_LEN,
  VNET_F_NEEDS_CSUM,
  VNET_F_DATA_VALID,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP,
  VNET_GSO_UDP_L4,
  GsoError,
  readVnetHeader,
  writePlainVnetHeader,
  segmentCount,
  writeSegment,
  finishPartialChecksum,
  sum16,
  type VnetHeader,
} from './gso.js';
export { coalesceTcp, GRO_MAX_SEGMENTS } from './gro.js';
export { SlotCoalescer } from './gro-ring.js';
export { setThreadName } from './thread-name.js';
export { RingPoller, pollIn, type PollerKind } from './poller.js';
export { watchReadable, type ReadableWatch } from './readable-watch.js';
