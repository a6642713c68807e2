// DELETE /v1/portforward: a client removes one of its own forwards, the admin any
// (optionally checked against the key it names).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJsonBody } from './body.js';
import { clientKey } from './caller.js';
import { HttpError } from './errors.js';
import { sendJson } from './json.js';
import { describe, peerOf, portOf, protocolOf, type ForwardContext } from './forward-context.js';

export function removeForward(ctx: ForwardContext) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    ctx.limit(req);
    const { value: body, raw } = await readJsonBody(req, ctx.bodyLimit);
    const role = ctx.authenticate(req, body);
    const key = clientKey(body.client_public_key, role === 'client');
    const protocol = protocolOf(body.protocol);
    const publicPort = portOf(body.public_port, 'public_port');
    if (role === 'client') {
      await ctx.prove(req, body.client_public_key as string, raw);
      await peerOf(ctx, key!);
    }
    const f = await ctx.registry.forwards.get(protocol, publicPort);
    if (!f || (role === 'admin' && key !== undefined && f.peerPublicKey !== key)) {
      throw new HttpError(404, `no ${protocol} forward on port ${publicPort}${key && role === 'admin' ? ' for that key' : ''}`);
    }
    if (role === 'client' && f.peerPublicKey !== key)
      throw new HttpError(403, `${protocol} port ${publicPort} is forwarded to another peer, not to this key`);
    const peer = await peerOf(ctx, f.peerPublicKey);
    const answer = describe(ctx, f, peer);
    await ctx.manager.close(protocol, publicPort);
    await ctx.registry.forwards.remove(protocol, publicPort);
    ctx.log.info(`forward ${protocol} port ${publicPort} removed (peer ${f.peerPublicKey.slice(0, 8)}…)`);
    sendJson(res, 200, { ...answer, active: false });
  };
}
