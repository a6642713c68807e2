export { Registry, DEFAULT_SUBNET, defaultStatePath, type RegistryOptions, type PeerRecord } from './registry.js';
export { RegistryError, RegistryFullError } from './errors.js';
export { AddressPool, parseSubnet, generateUla64, SERVER_INDEX, FIRST_PEER_INDEX, type Subnet } from './pool.js';
export { SCHEMA_VERSION, APPLICATION_ID } from './migrations.js';
export { ForwardStore, ForwardConflictError, type ForwardRecord, type ForwardProtocol } from './forwards.js';
export { DEFAULT_LEASE, parseLease, renewStep, expiryCheckInterval, LEASE_RENEW_STEP_MS } from './lease.js';
export { NonceStore, MemoryNonceCache, type NonceCache, type NonceClaim } from './nonces.js';
export { REGISTRY_FILE_MODE } from './file-mode.js';
