// @wirecage/wg-engine/data-plane: a Device wired to a TUN and a UDP port,
// sharded over worker threads. Its own entry because it loads the
// @wirecage/tun addon and piscina at import: the protocol core (the main
// entry) stays loadable where neither is wanted (keygen, metrics, stage 1).
export { DataPlane, type DataPlaneOptions, type PlaneIo, type ShardStats, type RingStatsPair } from './data/plane.js';
export { attachDevice, type AttachOptions, type Attachment } from './data/attach.js';
