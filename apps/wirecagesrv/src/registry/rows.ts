// Rows as both stores return them, into records. Times are unix ms: SQLite
// gives numbers, node-postgres gives BIGINT as a string (exact; a Date holds
// ms, never more than 2^53).
import type { AddressPool } from './pool.js';
import type { ForwardProtocol, ForwardRecord, PeerRecord } from './types.js';

type Ms = number | string;

export interface PeerRow {
  public_key: string;
  host_index: number;
  address4: string;
  address6: string;
  created_at: Ms;
  last_seen: Ms | null;
  last_endpoint: string | null;
  session_node: string | null;
  lease_expires: Ms;
}

export interface ForwardRow {
  protocol: ForwardProtocol;
  public_port: number;
  target_port: number;
  peer_public_key: string;
  created_at: Ms;
}

/** A new registration's row: the pool's addresses for `hostIndex`, no handshake yet. */
export function newPeerRow(pool: AddressPool, publicKey: string, hostIndex: number, now: number, leaseExpires: number): PeerRow {
  return {
    public_key: publicKey,
    host_index: hostIndex,
    address4: pool.address4(hostIndex),
    address6: pool.address6(hostIndex),
    created_at: now,
    last_seen: null,
    last_endpoint: null,
    session_node: null,
    lease_expires: leaseExpires,
  };
}

export function peerRecord(r: PeerRow): PeerRecord {
  return {
    publicKey: r.public_key,
    hostIndex: Number(r.host_index),
    address4: r.address4,
    address6: r.address6,
    createdAt: new Date(Number(r.created_at)),
    lastSeen: r.last_seen === null ? null : new Date(Number(r.last_seen)),
    lastEndpoint: r.last_endpoint,
    sessionNode: r.session_node,
    leaseExpires: new Date(Number(r.lease_expires)),
  };
}

export function forwardRecord(r: ForwardRow): ForwardRecord {
  return {
    protocol: r.protocol,
    publicPort: Number(r.public_port),
    targetPort: Number(r.target_port),
    peerPublicKey: r.peer_public_key,
    createdAt: new Date(Number(r.created_at)),
  };
}

/** The first host index not taken: `first` itself, or one past a taken index whose successor is free (null: none). */
export function lowestFreeSql(first: string, last: string): string {
  return `
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM peers WHERE host_index = ${first}) THEN ${first}
      ELSE (SELECT min(p.host_index + 1) FROM peers p
            WHERE p.host_index + 1 <= ${last}
              AND NOT EXISTS (SELECT 1 FROM peers q WHERE q.host_index = p.host_index + 1))
    END AS idx`;
}

/**
 * What a handshake writes: when and where, and the node; the lease moves only by a whole step (no
 * write of its own), and a lease already run out is not revived (the sweep removes it).
 */
export function touchSql(p: { key: string; now: string; endpoint: string; node: string; renewTo: string; step: string }): string {
  return `
    UPDATE peers SET last_seen = ${p.now}, last_endpoint = coalesce(${p.endpoint}, last_endpoint), session_node = ${p.node},
      lease_expires = CASE WHEN lease_expires > ${p.now} AND ${p.renewTo} - lease_expires >= ${p.step} THEN ${p.renewTo} ELSE lease_expires END
    WHERE public_key = ${p.key}`;
}
