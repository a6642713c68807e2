// wirecagesrv as a library: the registry, the API handler and the server they make together.
export {
  openRegistry,
  SqliteRegistry,
  RegistryError,
  RegistryFullError,
  AddressPool,
  DEFAULT_SUBNET,
  defaultStatePath,
  SCHEMA_VERSION,
  type Registry,
  type PeerRecord,
  type RegistryOptions,
  type Fleet,
  type NodeRecord,
  type RegistryChange,
} from './registry/index.js';
export { ForwardConflictError, type ForwardStore, type ForwardRecord, type ForwardProtocol } from './registry/index.js';
export {
  ForwardManager,
  ForwardBindError,
  restoreForwards,
  DEFAULT_FORWARD_LISTEN_ADDRESS,
  type ForwardManagerOptions,
  type ForwardTarget,
} from './forwards/index.js';
export { ProofVerifier, PROOF_HEADER, MAX_SKEW_S, type ProofVerifierOptions } from './api/proof.js';
export { DEFAULT_MAX_FORWARDS_PER_PEER, type ForwardApiOptions, type ForwardResponse } from './api/forwards.js';
export { createApiHandler, sendJson, type ApiOptions, type RegisterResponse } from './api/routes.js';
export { listenApi, type ApiServer, type ApiListen, type TlsFiles } from './api/listen.js';
export { RateLimiter } from '@wirecage/wg-engine';
export { type RateLimitOptions } from './api/caller.js';
export { tokenMatches } from './api/auth.js';
export { startLeaseExpiry, type LeaseExpiry, type LeaseExpiryOptions } from './api/lease-expiry.js';
export { parseLease, DEFAULT_LEASE } from './registry/index.js';
export {
  startServer,
  PERSISTENT_KEEPALIVE,
  DEFAULT_MAX_PEERS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  type ServerConfig,
  type RunningServer,
} from './server.js';
export { ReloadError, type ReloadAnswer } from './api/reload.js';
export type { ReadyNat } from './nat/index.js';
export { parseListen, formatListen, type ListenAddress } from './listen.js';
