// The device: our static identity, the peers, cryptokey routing, the index
// table, the handshake queue and the library API's two packet entries. It does
// no I/O of its own: datagrams and IP packets go in through
// receiveUdp()/sendPacket() and come out through the DeviceIO callbacks, so the
// same engine runs over a node:dgram socket, a data plane or a test harness.
// Per-packet rules come from data/packet-rules.ts, the data plane's shards' own.
import { EventEmitter } from 'node:events';
import { AllowedIps, type Cidr } from './allowed-ips.js';
import { systemClock, type Clock } from './clock.js';
import { MAX_PEERS, MAX_QUEUED_HANDSHAKES, KEY_LEN } from './constants.js';
import { datagramKind, outgoingFits, routeOf } from './data/packet-rules.js';
import { CookieChecker } from './cookie.js';
import { publicKeyOf } from './crypto/primitives.js';
import { Endpoint } from './endpoint.js';
import { IndexTable } from './index-table.js';
import { KeypairTable, type Keypair } from './keypair.js';
import { PeerTable } from './data/peer-table.js';
import { silentLogger, type Logger } from './log.js';
import type { StaticIdentity } from './noise.js';
import { Peer, type PeerHost } from './peer.js';
import { RateLimiter } from './ratelimiter.js';
import { HandshakeQueue, receiveTransport } from './receive.js';
import { DropCounters } from './stats.js';

export interface DeviceIO {
  /** Sends one datagram; returns false when the socket refused it. */
  sendUdp: (msg: Buffer, to: Endpoint) => boolean;
  /** Delivers one decrypted IP packet (never empty). The buffer may be reused after return: copy to keep. */
  writeTun: (packet: Uint8Array) => void;
}

export interface DeviceOptions {
  clock?: Clock;
  logger?: Logger;
  /** Inner MTU; padding never grows a packet past it. Default 1420. */
  mtu?: number;
  /** Most peers the device will hold (sizes the shared keypair table). Default 1024. */
  maxPeers?: number;
  io?: DeviceIO;
}

export interface PeerConfig {
  presharedKey?: Buffer | null;
  endpoint?: Endpoint | null;
  persistentKeepalive?: number;
  allowedIps?: Cidr[];
  replaceAllowedIps?: boolean;
}

export interface DeviceEvents {
  'handshake-complete': [Peer];
  /** The peer's allowed IPs changed (a data plane republishes them); it may have taken prefixes from others. */
  routes: [Peer];
  /** A peer is about to be removed (its id is then free for reuse). */
  'peer-removed': [Peer];
}

const NULL_IO: DeviceIO = { sendUdp: () => false, writeTun: () => {} };

export class Device extends EventEmitter<DeviceEvents> implements PeerHost {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly drops = new DropCounters();
  readonly keypairs: KeypairTable;
  readonly peerTable: PeerTable;
  readonly index: IndexTable<Peer, Keypair<Peer>>;
  readonly allowedIps = new AllowedIps<Peer>();
  readonly cookieChecker: CookieChecker;
  readonly rateLimiter: RateLimiter;
  readonly maxPeers: number;
  io: DeviceIO;
  mtu: number;
  listenPort = 0;
  fwmark = 0;
  private _identity: StaticIdentity | null = null;
  private _up = false;
  private readonly peersByKey = new Map<string, Peer>();
  private readonly peersById: (Peer | undefined)[] = [];
  private readonly freeIds: number[] = [];
  private readonly handshakes: HandshakeQueue;

  constructor(opts: DeviceOptions = {}) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
    this.mtu = opts.mtu ?? 1420;
    this.maxPeers = Math.min(opts.maxPeers ?? 1024, MAX_PEERS);
    this.io = opts.io ?? NULL_IO;
    this.keypairs = new KeypairTable(this.maxPeers * 3);
    this.peerTable = new PeerTable(this.maxPeers);
    // Every peer holds at most three keypairs and one handshake index.
    this.index = new IndexTable(this.maxPeers * 4);
    this.cookieChecker = new CookieChecker(this.clock);
    this.rateLimiter = new RateLimiter(this.clock);
    this.handshakes = new HandshakeQueue(this, MAX_QUEUED_HANDSHAKES);
  }

  get identity(): StaticIdentity | null {
    return this._identity;
  }

  get publicKey(): Buffer | null {
    return this._identity?.publicKey ?? null;
  }

  get isUp(): boolean {
    return this._up;
  }

  /** Sets (or with null, clears) the private key. Peers whose key equals our own public key are removed, as wg does. */
  setPrivateKey(privateKey: Uint8Array | null): void {
    if (privateKey && privateKey.length !== KEY_LEN) throw new Error(`a private key has ${KEY_LEN} bytes`);
    const old = this._identity;
    if (old && privateKey && old.privateKey.equals(privateKey)) return;
    this._identity = privateKey ? { privateKey: Buffer.from(privateKey), publicKey: publicKeyOf(privateKey) } : null;
    if (old) old.privateKey.fill(0);
    this.cookieChecker.init(this._identity?.publicKey ?? null);
    const own = this._identity ? this.peersByKey.get(this._identity.publicKey.toString('base64')) : undefined;
    if (own) this.removePeer(own.publicKey);
    for (const p of this.peersByKey.values()) {
      p.handshake.precompute(this._identity);
      // Sessions made under the old key are no longer ours.
      p.zeroKeyMaterial();
    }
  }

  up(): void {
    if (this._up) return;
    this._up = true;
    for (const p of this.peersByKey.values()) {
      if (p.persistentKeepalive) p.sendKeepalive();
    }
  }

  down(): void {
    if (!this._up) return;
    this._up = false;
    for (const p of this.peersByKey.values()) p.reset();
    this.handshakes.clear();
  }

  // ---- peers --------------------------------------------------------------

  peers(): IterableIterator<Peer> {
    return this.peersByKey.values();
  }

  get peerCount(): number {
    return this.peersByKey.size;
  }

  /** The peer with this id in the shared tables. */
  peerById(id: number): Peer | undefined {
    return this.peersById[id];
  }

  getPeer(publicKey: Uint8Array): Peer | undefined {
    return this.peersByKey.get(Buffer.from(publicKey).toString('base64'));
  }

  /** Adds a peer or updates an existing one. */
  setPeer(publicKey: Uint8Array, cfg: PeerConfig = {}): Peer {
    if (publicKey.length !== KEY_LEN) throw new Error(`a public key has ${KEY_LEN} bytes`);
    const id = Buffer.from(publicKey).toString('base64');
    let peer = this.peersByKey.get(id);
    if (!peer) {
      if (this._identity && this._identity.publicKey.equals(publicKey)) {
        throw new Error("a peer cannot have the device's own public key");
      }
      if (this.peersByKey.size >= this.maxPeers) throw new Error(`the device holds at most ${this.maxPeers} peers`);
      const pid = this.freeIds.pop() ?? this.peersById.length;
      peer = new Peer(this, Buffer.from(publicKey), pid);
      this.peersByKey.set(id, peer);
      this.peersById[pid] = peer;
    }
    if (cfg.presharedKey !== undefined) {
      peer.handshake.presharedKey.fill(0);
      peer.handshake.presharedKey = cfg.presharedKey ? Buffer.from(cfg.presharedKey) : Buffer.alloc(KEY_LEN);
    }
    if (cfg.endpoint !== undefined) peer.endpoint = cfg.endpoint;
    if (cfg.replaceAllowedIps) this.allowedIps.removeByValue(peer);
    for (const c of cfg.allowedIps ?? []) this.allowedIps.insert(c, peer);
    if (cfg.replaceAllowedIps || cfg.allowedIps?.length) this.emit('routes', peer);
    if (cfg.persistentKeepalive !== undefined) {
      const was = peer.persistentKeepalive;
      peer.persistentKeepalive = cfg.persistentKeepalive;
      // As the kernel: turning keepalives on (from off) sends one at once.
      if (cfg.persistentKeepalive && !was && this._up) peer.sendKeepalive();
      if (!cfg.persistentKeepalive) peer.timers.persistentKeepalive.del();
    }
    return peer;
  }

  removeAllowedIp(peer: Peer, cidr: Cidr): boolean {
    const removed = this.allowedIps.remove(cidr, peer);
    if (removed) this.emit('routes', peer);
    return removed;
  }

  removePeer(publicKey: Uint8Array): boolean {
    const id = Buffer.from(publicKey).toString('base64');
    const peer = this.peersByKey.get(id);
    if (!peer) return false;
    this.emit('peer-removed', peer);
    this.peersByKey.delete(id);
    this.allowedIps.removeByValue(peer);
    peer.remove();
    this.peerTable.reset(peer.id);
    this.peersById[peer.id] = undefined;
    this.freeIds.push(peer.id);
    this.emit('routes', peer);
    return true;
  }

  removeAllPeers(): void {
    for (const p of [...this.peersByKey.values()]) this.removePeer(p.publicKey);
  }

  /**
   * Starts a handshake with peer now (the client uses this to connect before its command starts).
   * At most one initiation goes out per Rekey-Timeout; `force` sends one even so, for a caller that
   * knows the last one went out on a path that is gone (the host's network changed).
   */
  initiateHandshake(peer: Peer, opts: { force?: boolean } = {}): void {
    if (opts.force) peer.lastSentHandshake = -Infinity;
    peer.sendHandshakeInitiation(false);
  }

  // ---- packet paths -----------------------------------------------------------

  /** An outgoing IP packet from the TUN side. */
  sendPacket(packet: Uint8Array): void {
    try {
      this.route(packet);
    } catch (err) {
      this.drops.add('outgoing-malformed');
      this.logger.debug(`outgoing packet failed: ${(err as Error).message}`);
    }
  }

  private route(packet: Uint8Array): void {
    if (!outgoingFits(packet, 0, packet.length, this.mtu)) {
      this.drops.add('outgoing-malformed');
      return;
    }
    const peer = routeOf(this.allowedIps, packet, 0);
    if (!peer) {
      this.drops.add('no-route');
      return;
    }
    peer.send(packet);
  }

  /** A datagram from the UDP side. msg may be decrypted in place. */
  receiveUdp(msg: Buffer, address: string, port: number): void {
    if (!this._up) return;
    const kind = datagramKind(msg, 0, msg.length);
    if (kind === 'oversized' || kind === 'malformed') {
      this.drops.add(kind);
      return;
    }
    if (kind === 'transport') {
      try {
        receiveTransport(this, msg, address, port);
      } catch (err) {
        // Whatever one packet does, the engine keeps running.
        this.drops.add('malformed');
        this.logger.debug(`transport message failed: ${(err as Error).message}`);
      }
      return;
    }
    this.handshakes.push(kind, msg, address, port);
  }

  /** Resolves when every queued handshake message has been processed. */
  settled(): Promise<void> {
    return this.handshakes.settled();
  }

  get underLoad(): boolean {
    return this.handshakes.underLoad;
  }

  sendUdp(msg: Buffer, to: Endpoint): boolean {
    if (this.io.sendUdp(msg, to)) return true;
    this.drops.add('send-failed');
    return false;
  }

  handshakeCompleted(peer: Peer): void {
    this.emit('handshake-complete', peer);
  }

  /** Stops every timer and zeroes every key. The device can be reused after up(). */
  close(): void {
    this.down();
    this.removeAllPeers();
    this.setPrivateKey(null);
  }
}

export { Endpoint };
