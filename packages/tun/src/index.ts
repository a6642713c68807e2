export { Tun, type TunOptions, type PacketHandler, type ErrorHandler } from './tun.js';
export { TunError } from './errors.js';
export type { QueueStats, TunStats } from './stats.js';
