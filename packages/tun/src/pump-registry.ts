// Which pumps use which Tun queue / UdpSocket, so that the owner can refuse a
// second reader of one fd and stop its pumps before closing the fd.
export interface Stoppable {
  stop(): void;
}

const byOwner = new WeakMap<object, Map<string, Stoppable>>();

/** Registers `pump` under `key` (e.g. 'reader:0'); throws `conflict` when the key is taken. */
export function attachPump(owner: object, key: string, pump: Stoppable, conflict: string): void {
  let pumps = byOwner.get(owner);
  if (!pumps) byOwner.set(owner, (pumps = new Map()));
  if (pumps.has(key)) throw new Error(conflict);
  pumps.set(key, pump);
}

export function detachPump(owner: object, key: string, pump: Stoppable): void {
  const pumps = byOwner.get(owner);
  if (pumps?.get(key) === pump) pumps.delete(key);
}

export function hasPump(owner: object, keyPrefix: string): boolean {
  for (const key of byOwner.get(owner)?.keys() ?? []) if (key.startsWith(keyPrefix)) return true;
  return false;
}

/** Stops (joins) every pump of `owner`. */
export function stopPumps(owner: object): void {
  for (const pump of [...(byOwner.get(owner)?.values() ?? [])]) pump.stop();
}
