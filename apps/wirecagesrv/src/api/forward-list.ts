// GET /v1/portforward: a client lists its own forwards (its key in the query), the admin every one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientKey } from './caller.js';
import { sendJson } from './json.js';
import { describe, peerOf, type ForwardContext } from './forward-context.js';

export function listForwards(ctx: ForwardContext) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    ctx.limit(req);
    const role = ctx.authenticate(req, null);
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    const keyText = url.searchParams.get('client_public_key') ?? undefined;
    const key = clientKey(keyText, role === 'client');
    if (role === 'client') {
      ctx.prove(req, keyText!, Buffer.alloc(0));
      peerOf(ctx, key!);
    }
    const peers = new Map(ctx.registry.list().map((p) => [p.publicKey, p]));
    const forwards = ctx.registry.forwards.list(key).map((f) => describe(ctx, f, peers.get(f.peerPublicKey)!));
    sendJson(res, 200, { forwards });
  };
}
