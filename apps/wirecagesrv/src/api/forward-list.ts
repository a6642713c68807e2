// GET /v1/portforward: a client lists its own forwards (its key in the query), the admin every one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientKey } from './caller.js';
import { sendJson } from './json.js';
import { describe, peerOf, type ForwardContext } from './forward-context.js';

export function listForwards(ctx: ForwardContext) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    ctx.limit(req);
    const role = ctx.authenticate(req, null);
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    const keyText = url.searchParams.get('client_public_key') ?? undefined;
    const key = clientKey(keyText, role === 'client');
    if (role === 'client') {
      await ctx.prove(req, keyText!, Buffer.alloc(0));
      await peerOf(ctx, key!);
    }
    const peers = new Map((await ctx.registry.list()).map((p) => [p.publicKey, p]));
    // A forward whose peer went between the two reads went with it.
    const forwards = (await ctx.registry.forwards.list(key)).flatMap((f) => {
      const peer = peers.get(f.peerPublicKey);
      return peer ? [describe(ctx, f, peer)] : [];
    });
    sendJson(res, 200, { forwards });
  };
}
