// What the rest of wirecagesrv knows of the registry: one asynchronous
// interface, two stores behind it. SQLite (sqlite/) is the embedded default,
// one server on one file; PostgreSQL (postgres/) holds a fleet of nodes on one
// database, and adds what several writers need (fleet.ts: nodes, changes).
// Both keep the same schema, version for version, and the same rules: the
// lowest free address, leases, one owner per public port.
import type { Logger } from '@wirecage/wg-engine';
import type { AddressPool } from './pool.js';

export interface RegistryOptions {
  /**
   * Where the registry lives: an SQLite file (created with its directory, 0700, if missing), or a
   * postgres:// (postgresql://) URL.
   */
  location: string;
  /** IPv4 pool; default: the one recorded in the registry, else DEFAULT_SUBNET. */
  subnet?: string;
  /** IPv6 pool; default: the one recorded in the registry, else a new random ULA /64. */
  subnet6?: string;
  /** Most peers registered at once; default: as many as the pool holds. */
  maxPeers?: number;
  /** How long a registration lasts without renewal, in ms; default 30 days. */
  leaseMs?: number;
  /** This server's name among the nodes sharing the registry (recorded with each handshake); default the host name. */
  node?: string;
  /** Hears of file modes fixed, leases granted, connections lost. */
  logger?: Logger;
}

export interface PeerRecord {
  publicKey: string;
  hostIndex: number;
  address4: string;
  address6: string;
  createdAt: Date;
  /** Last completed handshake; null if none yet. */
  lastSeen: Date | null;
  /** The peer's UDP endpoint at that handshake ("192.0.2.1:51820", "[2001:db8::1]:51820"); null if none. */
  lastEndpoint: string | null;
  /** The node that completed that handshake (it holds the peer's session and serves its forwards); null if none. */
  sessionNode: string | null;
  /** When the registration lapses unless renewed (re-registration, or a handshake). */
  leaseExpires: Date;
}

export type ForwardProtocol = 'tcp' | 'udp';

export interface ForwardRecord {
  protocol: ForwardProtocol;
  publicPort: number;
  targetPort: number;
  peerPublicKey: string;
  createdAt: Date;
}

export interface ForwardAddOptions {
  /** The most forwards one peer may hold (no bound when absent). */
  maxPerPeer?: number;
  /** The record's creation time (ms). */
  now?: number;
}

/** Port forwards; a peer's go with it when it is removed. */
export interface ForwardStore {
  get(protocol: ForwardProtocol, publicPort: number): Promise<ForwardRecord | undefined>;
  /** Every forward, or one peer's, by protocol and port. */
  list(peerPublicKey?: string): Promise<ForwardRecord[]>;
  count(peerPublicKey: string): Promise<number>;
  /**
   * Records a forward; ForwardConflictError when the port is taken or the peer unknown, ForwardLimitError
   * when the peer already has `maxPerPeer` forwards. Checked and written atomically: the store is the
   * arbiter between concurrent requests and between nodes.
   */
  add(f: Omit<ForwardRecord, 'createdAt'>, opts?: ForwardAddOptions): Promise<ForwardRecord>;
  remove(protocol: ForwardProtocol, publicPort: number): Promise<boolean>;
}

/** fresh: first use, now recorded; replayed: seen within its window; full: too many to remember. */
export type NonceClaim = 'fresh' | 'replayed' | 'full';

export interface NonceCache {
  /** Records `nonce` until `expiresMs` unless it is already recorded; `max` nonces at most. */
  claim(nonce: string, expiresMs: number, nowMs: number, max: number): Promise<NonceClaim>;
}

export interface Registry {
  /** What messages call it: the file, or the URL without its password. */
  readonly location: string;
  /** This server's name: what a handshake it completes records (sessionNode), and the changes it makes say. */
  readonly node: string;
  readonly pool: AddressPool;
  readonly maxPeers: number;
  /** Lease length in ms. */
  readonly leaseMs: number;
  readonly forwards: ForwardStore;
  /** Key-proof nonces seen within their window. */
  readonly nonces: NonceCache;
  /** The nodes sharing the registry, and its changes; null for a registry only one server uses (SQLite). */
  readonly fleet: Fleet | null;
  /**
   * The peer's addresses: the ones it already has, or the lowest free pair (atomically: no two
   * peers ever get one address, whoever else writes); either way a lease of leaseMs from `now`.
   */
  register(publicKey: string, now?: number): Promise<{ peer: PeerRecord; created: boolean }>;
  get(publicKey: string): Promise<PeerRecord | undefined>;
  /** Every peer, by host index. */
  list(): Promise<PeerRecord[]>;
  count(): Promise<number>;
  /** Forgets the peer (and its forwards); its addresses go back to the pool. */
  remove(publicKey: string): Promise<boolean>;
  /**
   * Records a completed handshake: when, from where, and that this node holds the session; renews
   * the lease when that gains a renewal step.
   */
  touch(publicKey: string, when?: number, endpoint?: string | null): Promise<void>;
  /** Peers whose lease ended at or before `now`, the oldest first. */
  expired(now?: number): Promise<PeerRecord[]>;
  /** Forgets the peer if its lease is still over at `now`: true for exactly one caller, however many race. */
  removeExpired(publicKey: string, now?: number): Promise<boolean>;
  /** Throws, saying what failed (never where the registry lives), unless a write commits now. */
  checkWritable(): Promise<void>;
  close(): Promise<void>;
}

/** A wirecagesrv sharing the registry, as its heartbeat last said. */
export interface NodeRecord {
  name: string;
  /** What the node tells clients to reach it on ("vpn1.example.org:51820"). */
  endpoint: string;
  /** Its API, as it listens ("https://0.0.0.0:8443"). */
  api: string;
  startedAt: Date;
  heartbeat: Date;
  /** Peers whose session it holds (their last handshake was with it). */
  sessions: number;
}

/**
 * A change one node made that every other must apply: a peer added or
 * removed (its device), a peer's session moved (its forwards), a forward
 * added or removed. Delivered at most once and maybe never (a dropped
 * connection): a node also reconciles in full now and then.
 */
export type RegistryChange =
  | { kind: 'peer-added'; publicKey: string; node: string }
  | { kind: 'peer-removed'; publicKey: string; node: string }
  | { kind: 'session-moved'; publicKey: string; node: string }
  | { kind: 'forward-added'; protocol: ForwardProtocol; publicPort: number; node: string }
  | { kind: 'forward-removed'; protocol: ForwardProtocol; publicPort: number; node: string };

export interface Fleet {
  /** Records that this node is alive (and what it serves); the other nodes see it in nodes(). */
  heartbeat(info: { endpoint: string; api: string; startedAt: Date }, now?: number): Promise<void>;
  /** Nodes whose heartbeat is younger than `withinMs` (default: every node on record), by name. */
  nodes(withinMs?: number, now?: number): Promise<NodeRecord[]>;
  /** Forgets this node's heartbeat (a clean stop). */
  leave(): Promise<void>;
  /**
   * Hands every change another node makes to `onChange`, from now until close(). `onGap` runs
   * whenever changes may have been missed (the connection was lost and is back): reconcile then.
   */
  watch(onChange: (c: RegistryChange) => void, onGap: () => void): Promise<{ close(): Promise<void> }>;
}
