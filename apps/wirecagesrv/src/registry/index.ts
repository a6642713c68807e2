export { Registry, DEFAULT_SUBNET, defaultStatePath, type RegistryOptions, type PeerRecord } from './registry.js';
export { RegistryError, RegistryFullError } from './errors.js';
export { AddressPool, parseSubnet, generateUla64, SERVER_INDEX, FIRST_PEER_INDEX, type Subnet } from './pool.js';
export { SCHEMA_VERSION, APPLICATION_ID } from './migrations.js';
export { ForwardStore, ForwardConflictError, type ForwardRecord, type ForwardProtocol } from './forwards.js';
