export type {
  Registry,
  RegistryOptions,
  PeerRecord,
  ForwardStore,
  ForwardRecord,
  ForwardAddOptions,
  ForwardProtocol,
  NonceCache,
  NonceClaim,
  Fleet,
  NodeRecord,
  RegistryChange,
} from './types.js';
export { openRegistry } from './open-registry.js';
export { registryUnavailable } from './unavailable.js';
export { isPostgresUrl } from './options.js';
export { DEFAULT_SUBNET } from './resolve-pool.js';
export { SqliteRegistry, defaultStatePath } from './sqlite/registry.js';
export { RegistryError, RegistryFullError } from './errors.js';
export { ForwardConflictError, ForwardLimitError } from './forward-conflict.js';
export { AddressPool, parseSubnet, generateUla64, SERVER_INDEX, FIRST_PEER_INDEX, type Subnet } from './pool.js';
export { SCHEMA_VERSION, APPLICATION_ID } from './sqlite/migrations.js';
export { DEFAULT_LEASE, parseLease, renewStep, expiryCheckInterval, LEASE_RENEW_STEP_MS } from './lease.js';
export { MemoryNonceCache } from './memory-nonces.js';
export { REGISTRY_FILE_MODE } from './sqlite/file-mode.js';
