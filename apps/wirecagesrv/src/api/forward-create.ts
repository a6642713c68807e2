// POST /v1/portforward: listen on a public port and relay it to a peer's port.
// public_port 0 asks for any free port of --forward-ports: the answer names it.
import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatPortRange, inPortRange, portsFrom } from '../forwards/index.js';
import { ForwardConflictError, ForwardLimitError, type ForwardProtocol, type ForwardRecord, type PeerRecord } from '../registry/index.js';
import { servesForwardsHere } from '../fleet/forwards-here.js';
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
      publicPort: portOf(body.public_port, 'public_port', { zero: 'any free port the server forwards' }),
      targetPort: portOf(body.target_port, 'target_port'),
    };
    const { protocol, publicPort } = want;
    // 403, not 409: no forward holds the port; the server's configuration forbids it.
    const range = ctx.manager.ports;
    if (range && publicPort !== 0 && !inPortRange(range, publicPort))
      throw new HttpError(
        403,
        `public_port ${publicPort} is outside the ports this server forwards (${formatPortRange(range)}); pick one in that range`,
      );
    if (role === 'client') await ctx.prove(req, body.client_public_key as string, raw);
    const peer = await peerOf(ctx, want.key);
    if (publicPort === 0) {
      await roomFor(ctx, want.key);
      sendJson(res, 201, describe(ctx, await anyFreePort(ctx, want, peer), peer));
      return;
    }
    const slot = `${protocol}/${publicPort}`;
    if (ctx.pending.has(slot)) throw new HttpError(409, `${protocol} port ${publicPort} is being set up by another request`);
    // Claimed before the first await: a second request for the port meets the claim, not a gap.
    ctx.pending.add(slot);
    try {
      const existing = await ctx.registry.forwards.get(protocol, publicPort);
      if (existing) {
        await repeated(ctx, want, existing, peer);
        sendJson(res, 200, describe(ctx, existing, peer));
        return;
      }
      await roomFor(ctx, want.key);
      sendJson(res, 201, describe(ctx, await added(ctx, want, peer), peer));
    } finally {
      ctx.pending.delete(slot);
    }
  };
}

/** Before a port is bound for nothing; the store's add decides between concurrent requests. */
async function roomFor(ctx: ForwardContext, key: string): Promise<void> {
  if ((await ctx.registry.forwards.count(key)) >= ctx.maxPerPeer) throw new HttpError(409, new ForwardLimitError(ctx.maxPerPeer).message);
}

/**
 * The same forward again (a client retrying, or restarting after a crash): answered as it is,
 * and listened on again if it was not active. Another peer's port, or another target, is 409.
 */
async function repeated(ctx: ForwardContext, want: Wanted, existing: ForwardRecord, peer: PeerRecord): Promise<void> {
  const { protocol, publicPort } = want;
  if (existing.peerPublicKey !== want.key) throw new HttpError(409, `${protocol} port ${publicPort} is already forwarded to another peer`);
  if (existing.targetPort !== want.targetPort) {
    throw new HttpError(
      409,
      `${protocol} port ${publicPort} is already forwarded to this peer's port ${existing.targetPort}; remove it first (DELETE /v1/portforward)`,
    );
  }
  if (!ctx.manager.isOpen(protocol, publicPort) && servesForwardsHere(ctx.registry, peer)) await openForward(ctx, existing, peer);
}

/**
 * A new forward, its slot claimed by the caller: listened on first, so a port that cannot be bound
 * is never recorded, never answered 201; the registry's add is the arbiter between servers.
 */
async function added(ctx: ForwardContext, want: Wanted, peer: PeerRecord): Promise<ForwardRecord> {
  const { key, protocol, publicPort, targetPort } = want;
  // In a fleet whose node holding the peer's session is another, that node listens (on the change this makes).
  const here = servesForwardsHere(ctx.registry, peer);
  if (here) await openForward(ctx, { protocol, publicPort, targetPort }, peer);
  let record: ForwardRecord;
  try {
    record = await ctx.registry.forwards.add({ protocol, publicPort, targetPort, peerPublicKey: key }, { maxPerPeer: ctx.maxPerPeer });
  } catch (err) {
    if (here) await ctx.manager.close(protocol, publicPort);
    if (err instanceof ForwardConflictError) throw new HttpError(err.existing ? 409 : 404, err.message);
    if (err instanceof ForwardLimitError) throw new HttpError(409, err.message);
    throw err;
  }
  ctx.log.info(
    `forward ${protocol} ${ctx.manager.listenAddress} port ${publicPort} -> ${peer.address4} port ${targetPort} (peer ${key.slice(0, 8)}…)`,
  );
  return record;
}

/**
 * public_port 0: the first free port of the range from a random start (so two clients rarely race
 * for the same one). A port is free when no forward holds it, no request is binding it and it can be
 * bound. Its slot is claimed before the registry is asked, so concurrent requests skip it.
 */
async function anyFreePort(ctx: ForwardContext, want: Wanted, peer: PeerRecord): Promise<ForwardRecord> {
  const range = ctx.manager.ports;
  if (!range) throw new HttpError(400, 'public_port 0 needs a range of ports to choose from, and this server forwards any port: name one');
  const { protocol } = want;
  let heldElsewhere = 0;
  for (const port of portsFrom(range, range.low + randomInt(range.high - range.low + 1))) {
    const slot = `${protocol}/${port}`;
    if (ctx.pending.has(slot) || ctx.manager.isOpen(protocol, port)) continue;
    ctx.pending.add(slot);
    try {
      if (await ctx.registry.forwards.get(protocol, port)) continue;
      return await added(ctx, { ...want, publicPort: port }, peer);
    } catch (err) {
      // 503 from openForward: the port cannot be bound (another program holds it): try the next one.
      if (!(err instanceof HttpError && err.status === 503)) throw err;
      heldElsewhere++;
    } finally {
      ctx.pending.delete(slot);
    }
  }
  const others = heldElsewhere ? `, ${heldElsewhere} of them held by other programs on the server` : '';
  throw new HttpError(
    503,
    `no ${protocol} port is free among the ports this server forwards (${formatPortRange(range)}): every one is taken${others}; remove a forward or ask for a wider --forward-ports`,
  );
}
