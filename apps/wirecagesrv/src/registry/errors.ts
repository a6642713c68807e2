export class RegistryError extends Error {
  override name = 'RegistryError';
}

/** No address is left in the pool, or --max-peers is reached. */
export class RegistryFullError extends RegistryError {
  override name = 'RegistryFullError';
}
