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
  }

  /** A peer this node removed itself. */
  removed(p: PeerRecord): void {
    this.known.delete(p.publicKey);
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
      const peers = await this.o.registry.list();
      const now = new Set(peers.map((p) => p.publicKey));
      for (const key of [...this.known.keys()]) if (!now.has(key)) await this.dropPeer(key);
      for (const p of peers) this.addPeer(p);
      await this.place(peers);
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
    if (c.kind === 'peer-removed') return this.dropPeer(c.publicKey);
    if (c.kind === 'peer-added' || c.kind === 'session-moved') {
      const p = await registry.get(c.publicKey);
      if (p && c.kind === 'peer-added') this.addPeer(p);
      if (p) await this.place([p]);
      return;
    }
    await this.place(await registry.list());
  }

  private addPeer(p: PeerRecord): void {
    const had = this.known.get(p.publicKey);
    if (had && had.hostIndex === p.hostIndex) return;
    this.known.set(p.publicKey, p);
    this.o.setPeer(p);
    this.o.log.info(`fleet: peer ${p.publicKey.slice(0, 8)}… (${p.address4}) registered on another node`);
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
