// Receiver indices (whitepaper 5.4.2): random 32-bit numbers we hand to a
// peer so its messages name our state directly. One table maps each live
// index to the handshake or keypair it belongs to, so an incoming message is
// matched by lookup, never by trying every peer's keys.
import { randomUint32 } from './crypto/primitives.js';

export type IndexEntry<P, K> =
  | { readonly kind: 'handshake'; readonly peer: P }
  | { readonly kind: 'keypair'; readonly peer: P; readonly keypair: K };

export class IndexTable<P, K> {
  private readonly map = new Map<number, IndexEntry<P, K>>();

  /** Reserves a fresh random index for entry. */
  insert(entry: IndexEntry<P, K>): number {
    for (;;) {
      const index = randomUint32();
      if (!this.map.has(index)) {
        this.map.set(index, entry);
        return index;
      }
    }
  }

  /** Points an index we already own at new state (a handshake becoming a keypair). */
  replace(index: number, entry: IndexEntry<P, K>): void {
    this.map.set(index, entry);
  }

  get(index: number): IndexEntry<P, K> | undefined {
    return this.map.get(index);
  }

  delete(index: number): void {
    this.map.delete(index);
  }

  get size(): number {
    return this.map.size;
  }
}
