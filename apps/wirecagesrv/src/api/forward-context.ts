// What the three /v1/portforward handlers (forward-create.ts, forward-remove.ts,
// forward-list.ts) share: the checks every request passes and the answer's shape.
import type { IncomingMessage } from 'node:http';
import type { Logger } from '@wirecage/wg-engine';
import { ForwardBindError, type ForwardManager } from '../forwards/index.js';
import type { ForwardProtocol, ForwardRecord, PeerRecord, Registry } from '../registry/index.js';
import { HttpError } from './errors.js';
import type { CallerRole } from './caller.js';

export interface ForwardResponse {
  protocol: ForwardProtocol;
  public_port: number;
  target_port: number;
  client_public_key: string;
  client_address: string;
  client_address6: string;
  /** The address the public port is bound on ("0.0.0.0": every IPv4 address of the server). */
  listen_address: string;
  /**
   * Where remote clients reach the public port: the server's public address or name as its operator
   * gave it (the host of --wg-endpoint), else a listen_address that names one address; null when the
   * server cannot tell (bound on every address, no endpoint known).
   */
  public_address: string | null;
  /** The public port is bound now (false when it could not be bound again after a restart). */
  active: boolean;
  created_at: string;
}

export interface ForwardContext {
  registry: Registry;
  manager: ForwardManager;
  log: Logger;
  bodyLimit: number;
  maxPerPeer: number;
  /** ForwardApiOptions.publicAddress: what clients are told to connect to. */
  publicAddress?: string;
  /** Ports being bound right now: a second request for one gets 409, not a bind error. */
  pending: Set<string>;
  /** 429 once the caller's source is over the route's limit. */
  limit(req: IncomingMessage): void;
  authenticate(req: IncomingMessage, body: Record<string, unknown> | null): CallerRole;
  /** For a non-admin caller: the proof for the key as the request names it. */
  prove(req: IncomingMessage, keyText: string, raw: Buffer): Promise<void>;
}

export function protocolOf(v: unknown): ForwardProtocol {
  if (v !== 'tcp' && v !== 'udp') throw new HttpError(400, '"protocol" must be "tcp" or "udp"');
  return v;
}

export function portOf(v: unknown, field: string, opts: { zero?: string } = {}): number {
  if (opts.zero !== undefined && v === 0) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new HttpError(400, `"${field}" must be a whole number from 1 to 65535${opts.zero !== undefined ? ` (or 0: ${opts.zero})` : ''}`);
  }
  return v;
}

/** What clients connect to: the configured public address, else a listen address that is one address. */
export function publicAddressOf(configured: string | undefined, listenAddress: string): string | null {
  if (configured) return configured;
  return listenAddress === '0.0.0.0' || listenAddress === '::' ? null : listenAddress;
}

export async function peerOf(ctx: ForwardContext, key: string): Promise<PeerRecord> {
  const peer = await ctx.registry.get(key);
  if (!peer) throw new HttpError(404, `no peer is registered with the key ${key}; register first (POST /v1/register)`);
  return peer;
}

export function describe(ctx: ForwardContext, f: ForwardRecord, peer: PeerRecord): ForwardResponse {
  return {
    protocol: f.protocol,
    public_port: f.publicPort,
    target_port: f.targetPort,
    client_public_key: f.peerPublicKey,
    client_address: peer.address4,
    client_address6: peer.address6,
    listen_address: ctx.manager.listenAddress,
    public_address: publicAddressOf(ctx.publicAddress, ctx.manager.listenAddress),
    active: ctx.manager.isOpen(f.protocol, f.publicPort),
    created_at: f.createdAt.toISOString(),
  };
}

/** Listens on the forward's public port for the peer; a port that cannot be bound is 503. */
export async function openForward(
  ctx: ForwardContext,
  f: { protocol: ForwardProtocol; publicPort: number; targetPort: number },
  peer: PeerRecord,
): Promise<void> {
  try {
    await ctx.manager.open({ ...f, address4: peer.address4, address6: peer.address6 });
  } catch (err) {
    if (err instanceof ForwardBindError) throw new HttpError(503, err.message);
    throw err;
  }
}
