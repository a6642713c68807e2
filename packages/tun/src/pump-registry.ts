// Which pumps use which Tun queue / UdpSocket, so that the owner can refuse a
// second reader of one fd and stop its pumps before closing the fd.
export interface Stoppable {
  readonly running: boolean;
  stop(): void;
}

const byOwner = new WeakMap<object, Map<string, Stoppable>>();

/**
 * Registers `pump` under `key` (e.g. 'tunReader:0'); throws `conflict` while
 * another running pump holds the key. One whose thread already ended (its
 * ring was closed) is stopped and replaced.
 */
export function attachPump(owner: object, key: string, pump: Stoppable, conflict: string): void {
  let pumps = byOwner.get(owner);
  if (!pumps) byOwner.set(owner, (pumps = new Map<string, Stoppable>()));
  const existing = pumps.get(key);
  if (existing?.running) throw new Error(conflict);
  existing?.stop();
  pumps.set(key, pump);
}

export function detachPump(owner: object, key: string, pump: Stoppable): void {
  const pumps = byOwner.get(owner);
  if (pumps?.get(key) === pump) pumps.delete(key);
}

/** A running pump under a key starting with `keyPrefix`. */
export function hasPump(owner: object, keyPrefix: string): boolean {
  for (const [key, pump] of byOwner.get(owner) ?? []) if (key.startsWith(keyPrefix) && pump.running) return true;
  return false;
}

/** Stops (joins) every pump of `owner`. */
export function stopPumps(owner: object): void {
  for (const pump of [...(byOwner.get(owner)?.values() ?? [])]) pump.stop();
}
