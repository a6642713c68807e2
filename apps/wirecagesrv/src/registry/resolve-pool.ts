// The pools: those recorded in the registry, or given and then recorded. A
// given subnet that differs from the recorded one is refused while peers
// hold addresses in it, since taking it would renumber them all. One rule
// for both stores, which run it inside their own transaction.
import { RegistryError } from './errors.js';
import { AddressPool, generateUla64, parseSubnet, PoolError, type Subnet } from './pool.js';

export const DEFAULT_SUBNET = '10.200.100.0/24';

/** The meta table and the peer count, as the store's open transaction reads and writes them. */
export interface PoolMeta {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  peers(): Promise<number>;
}

export async function resolvePool(meta: PoolMeta, opts: { location: string; subnet?: string; subnet6?: string }): Promise<AddressPool> {
  const peers = await meta.peers();
  const pick = async (key: string, given: string | undefined, family: 4 | 6, flag: string, fallback: () => string): Promise<Subnet> => {
    const recorded = await meta.get(key);
    try {
      if (given === undefined) {
        const s = parseSubnet(recorded ?? fallback(), family, recorded ? `${key} recorded in ${opts.location}` : flag);
        if (!recorded) await meta.set(key, s.text);
        return s;
      }
      const s = parseSubnet(given, family, flag);
      if (recorded !== s.text) {
        if (recorded && peers > 0) {
          throw new RegistryError(
            `${flag} ${s.text} differs from ${recorded}, recorded in ${opts.location} for its ${peers} peer(s); ` +
              `changing it would renumber them. Leave ${flag} out (or give ${recorded}), or use another registry.`,
          );
        }
        await meta.set(key, s.text);
      }
      return s;
    } catch (err) {
      if (err instanceof PoolError) throw new RegistryError(err.message);
      throw err;
    }
  };
  const s4 = await pick('subnet4', opts.subnet, 4, '--subnet', () => DEFAULT_SUBNET);
  const s6 = await pick('subnet6', opts.subnet6, 6, '--subnet6', generateUla64);
  return new AddressPool(s4, s6);
}
