// A node of a fleet keeps its WireGuard device and its forwards in step with
// the registry the other nodes write. Each change another node makes arrives
// as a notification (Fleet.watch) and is applied at once; a full reconcile
// runs after a gap (the connection was lost, changes may be missed) and every
// reconcileMs all the same. Changes this node makes itself are applied where
// it makes them (the API, the lease sweep), as on a single server.
import type { Logger } from '@wirecage/wg-engine';
import type { ForwardManager } from '../forwards/index.js';
import type { Fleet, PeerRecord, Registry, RegistryChange } from '../registry/index.js';
import { placeForwards } from './place-forwards.js';

/** A full reconcile this often even without a gap: what a notification lost in flight costs at most. */
export const RECONCILE_MS = 30_000;

export interface FleetSyncOptions {
  registry: Registry;
  fleet: Fleet;
  manager: ForwardManager;
  /** The peers the device holds now (as loaded at start). */
  peers: PeerRecord[];
  /** Puts the peer on the device (its allowed IPs), as a local registration does. */
  setPeer(p: PeerRecord): void;
  /** Takes the peer off the device and cuts its NAT flows, as a local removal does. */
  onRemoved(p: PeerRecord): Promise<void>;
  log: Logger;
  reconcileMs?: number;
}

export class FleetSync {
  private readonly known: Map<string, PeerRecord>;
  /** When this node last registered or removed each key itself (a count of such changes). */
  private readonly localChange = new Map<string, number>();
  private changes = 0;
  /** One change or reconcile at a time, in order: a removal must not overtake the addition it follows. */
  private queue: Promise<void> = Promise.resolve();
  private watcher: { close(): Promise<void> } | null = null;
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly o: FleetSyncOptions) {
    this.known = new Map(o.peers.map((p) => [p.publicKey, p]));
  }

  static async start(o: FleetSyncOptions): Promise<FleetSync> {
    const s = new FleetSync(o);
    s.watcher = await o.fleet.watch(
      (c) => void s.enqueue(`applying ${c.kind} from ${c.node}`, () => s.apply(c)),
      () => void s.reconcile(),
    );
    // The device was loaded from a list read before this node listened: what the other nodes
    // changed in between reached no one here. Listening now, one reconcile closes that gap.
    await s.reconcile();
    s.timer = setInterval(() => void s.reconcile(), o.reconcileMs ?? RECONCILE_MS);
    s.timer.unref();
    return s;
  }

  /** A peer this node registered itself. */
  added(p: PeerRecord): void {
    this.known.set(p.publicKey, p);
    this.localChange.set(p.publicKey, ++this.changes);
  }

  /** A peer this node removed itself. */
  removed(p: PeerRecord): void {
    this.known.delete(p.publicKey);
    this.localChange.set(p.publicKey, ++this.changes);
  }

  /** This node completed a handshake with the peer (its session is here now): its forwards listen here. */
  sessionHere(publicKey: string): void {
    void this.enqueue('placing forwards after a handshake', async () => {
      const p = await this.o.registry.get(publicKey);
      if (p) await this.place([p]);
    });
  }

  /** The device and the forwards made to match the registry now. */
  reconcile(): Promise<void> {
    return this.enqueue('reconciling', async () => {
      const before = this.changes;
      const peers = await this.o.registry.list();
      // A key this node registered or removed itself after the list was read is newer than the list.
      const newer = (key: string) => (this.localChange.get(key) ?? 0) > before;
      const now = new Set(peers.map((p) => p.publicKey));
      for (const key of [...this.known.keys()]) if (!now.has(key) && !newer(key)) await this.dropPeer(key);
      const added = peers.filter((p) => !newer(p.publicKey) && this.addPeer(p)).length;
      if (added > 0) this.o.log.info(`fleet: the reconcile put ${added} peer(s) registered on other nodes on the device`);
      await this.place(peers);
      this.localChange.clear();
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.watcher?.close();
    await this.queue;
  }

  private enqueue(what: string, f: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(f).catch((err: unknown) => this.o.log.warn(`fleet: ${what}: ${(err as Error).message}`));
    return this.queue;
  }

  private async apply(c: RegistryChange): Promise<void> {
    const { registry } = this.o;
    if (c.kind === 'peer-removed') return this.removedElsewhere(c.publicKey);
    if (c.kind === 'peer-added' || c.kind === 'session-moved') {
      const p = await registry.get(c.publicKey);
      if (p && c.kind === 'peer-added') this.addPeer(p);
      if (p) await this.place([p]);
      return;
    }
    await this.place(await registry.list());
  }

  /**
   * A removal is heard late when changes queue up, maybe after the key registered again (here,
   * or on a node whose change is still queued): the registry says whether the peer is gone now.
   */
  private async removedElsewhere(key: string): Promise<void> {
    const p = await this.o.registry.get(key);
    if (!p) return this.dropPeer(key);
    this.addPeer(p);
    await this.place([p]);
  }

  /** True when the device did not hold the peer (with these addresses) yet. */
  private addPeer(p: PeerRecord): boolean {
    const had = this.known.get(p.publicKey);
    if (had && had.hostIndex === p.hostIndex) return false;
    this.known.set(p.publicKey, p);
    this.o.setPeer(p);
    // Debug: a burst of registrations on the other nodes is a line per peer on every node.
    this.o.log.debug(`fleet: peer ${p.publicKey.slice(0, 8)}… (${p.address4}) registered on another node`);
    return true;
  }

  private async dropPeer(key: string): Promise<void> {
    const p = this.known.get(key);
    if (!p) return;
    this.known.delete(key);
    await this.o.onRemoved(p);
    await this.o.manager.closeTo(p.address4);
    this.o.log.info(`fleet: peer ${key.slice(0, 8)}… (${p.address4}) removed on another node`);
  }

  private place(peers: PeerRecord[]): Promise<void> {
    return placeForwards(this.o.registry, this.o.manager, peers, this.o.log);
  }
}
