export { ForwardManager, ForwardBindError, DEFAULT_FORWARD_LISTEN_ADDRESS, type ForwardManagerOptions } from './manager.js';
export { restoreForwards } from './restore.js';
export type { ForwardTarget } from './types.js';
export type { TcpForwardOptions } from './tcp.js';
export type { UdpForwardOptions } from './udp.js';
export { DEFAULT_FORWARD_PORTS, formatPortRange, inPortRange, parsePortRange, portsFrom, type PortRange } from './ports.js';
