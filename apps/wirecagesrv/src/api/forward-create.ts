// POST /v1/portforward: listen on a public port and relay it to a peer's port.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatPortRange, inPortRange } from '../forwards/index.js';
import { ForwardConflictError, type ForwardProtocol, type ForwardRecord, type PeerRecord } from '../registry/index.js';
import { readJsonBody } from './body.js';
import { clientKey } from './caller.js';
import { HttpError } from './errors.js';
import { sendJson } from './json.js';
import { describe, openForward, peerOf, portOf, protocolOf, type ForwardContext } from './forward-context.js';

interface Wanted {
  key: string;
  protocol: ForwardProtocol;
  publicPort: number;
  targetPort: number;
}

export function createForward(ctx: ForwardContext) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    ctx.limit(req);
    const { value: body, raw } = await readJsonBody(req, ctx.bodyLimit);
    const role = ctx.authenticate(req, body);
    const want: Wanted = {
      key: clientKey(body.client_public_key, true)!,
      protocol: protocolOf(body.protocol),
      publicPort: portOf(body.public_port, 'public_port'),
      targetPort: portOf(body.target_port, 'target_port'),
    };
    const { protocol, publicPort } = want;
    // 403, not 409: no forward holds the port; the server's configuration forbids it.
    const range = ctx.manager.ports;
    if (range && !inPortRange(range, publicPort)) throw new HttpError(403, `public_port ${publicPort} is outside the ports this server forwards (${formatPortRange(range)}); pick one in that range`);
    if (role === 'client') ctx.prove(req, body.client_public_key as string, raw);
    const peer = peerOf(ctx, want.key);
    const slot = `${protocol}/${publicPort}`;
    if (ctx.pending.has(slot)) throw new HttpError(409, `${protocol} port ${publicPort} is being set up by another request`);

    const existing = ctx.registry.forwards.get(protocol, publicPort);
    if (existing) {
      await repeated(ctx, want, existing, peer, slot);
      sendJson(res, 200, describe(ctx, existing, peer));
      return;
    }
    if (ctx.registry.forwards.count(want.key) >= ctx.maxPerPeer) throw new HttpError(409, `this peer already has ${ctx.maxPerPeer} forwards, the most allowed; remove one first`);
    const record = await added(ctx, want, peer, slot);
    sendJson(res, 201, describe(ctx, record, peer));
  };
}

/**
 * The same forward again (a client retrying, or restarting after a crash): answered as it is,
 * and listened on again if it was not active. Another peer's port, or another target, is 409.
 */
async function repeated(ctx: ForwardContext, want: Wanted, existing: ForwardRecord, peer: PeerRecord, slot: string): Promise<void> {
  const { protocol, publicPort } = want;
  if (existing.peerPublicKey !== want.key) throw new HttpError(409, `${protocol} port ${publicPort} is already forwarded to another peer`);
  if (existing.targetPort !== want.targetPort) {
    throw new HttpError(409, `${protocol} port ${publicPort} is already forwarded to this peer's port ${existing.targetPort}; remove it first (DELETE /v1/portforward)`);
  }
  if (ctx.manager.isOpen(protocol, publicPort)) return;
  ctx.pending.add(slot);
  try {
    await openForward(ctx, existing, peer);
  } finally {
    ctx.pending.delete(slot);
  }
}

/** A new forward: listened on first, so a port that cannot be bound is never recorded, never answered 201. */
async function added(ctx: ForwardContext, want: Wanted, peer: PeerRecord, slot: string): Promise<ForwardRecord> {
  const { key, protocol, publicPort, targetPort } = want;
  ctx.pending.add(slot);
  try {
    await openForward(ctx, { protocol, publicPort, targetPort }, peer);
    let record: ForwardRecord;
    try {
      record = ctx.registry.forwards.add({ protocol, publicPort, targetPort, peerPublicKey: key });
    } catch (err) {
      await ctx.manager.close(protocol, publicPort);
      if (err instanceof ForwardConflictError) throw new HttpError(err.existing ? 409 : 404, err.message);
      throw err;
    }
    ctx.log.info(`forward ${protocol} ${ctx.manager.listenAddress} port ${publicPort} -> ${peer.address4} port ${targetPort} (peer ${key.slice(0, 8)}…)`);
    return record;
  } finally {
    ctx.pending.delete(slot);
  }
}
