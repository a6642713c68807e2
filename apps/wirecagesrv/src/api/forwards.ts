// /v1/portforward: create (POST), remove (DELETE) and list (GET) port forwards.
//
// Who may touch a forward: a client that proves its key, for that key's
// forwards only, or the admin (caller.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger, type RateLimiter } from '@wirecage/wg-engine';
import type { ForwardManager } from '../forwards/index.js';
import type { Registry } from '../registry/index.js';
import { callerRole, proveKey, routeLimit, type RateLimitOptions } from './caller.js';
import type { ProofVerifier } from './proof.js';
import type { ForwardContext } from './forward-context.js';
import { createForward } from './forward-create.js';
import { listForwards } from './forward-list.js';
import { removeForward } from './forward-remove.js';

export type { ForwardResponse } from './forward-context.js';

export const DEFAULT_MAX_FORWARDS_PER_PEER = 32;

export interface ForwardApiOptions {
  manager: ForwardManager;
  proof: ProofVerifier;
  /** Manages every forward without a proof; none when undefined. */
  adminToken?: string;
  /** Requests per source on this route; default a burst of 60, 60 a minute. */
  rateLimit?: RateLimitOptions | RateLimiter;
  maxPerPeer?: number;
  /**
   * The server's public address or name for forwards, told to clients as public_address (a caged
   * program learns it as WIRECAGE_PUBLIC_ADDR): the host of --wg-endpoint. Without it the answer
   * names --forward-listen-address when that is one address, else null.
   */
  publicAddress?: string;
}

// As in routes.ts: a handler with nothing to wait for returns at once.
type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface Common {
  registry: Registry;
  authToken: string;
  bodyLimit: number;
  logger?: Logger;
}

export function forwardHandlers(common: Common, opts: ForwardApiOptions): Record<'GET' | 'POST' | 'DELETE', Handler> {
  const ctx: ForwardContext = {
    registry: common.registry,
    manager: opts.manager,
    log: common.logger ?? silentLogger,
    bodyLimit: common.bodyLimit,
    maxPerPeer: opts.maxPerPeer ?? DEFAULT_MAX_FORWARDS_PER_PEER,
    publicAddress: opts.publicAddress,
    pending: new Set<string>(),
    limit: routeLimit(opts.rateLimit, 'port-forward requests'),
    authenticate: (req, body) => callerRole(req, body, common.authToken, opts.adminToken),
    prove: (req, keyText, raw) => proveKey(opts.proof, req, keyText, raw),
  };
  return { GET: listForwards(ctx), POST: createForward(ctx), DELETE: removeForward(ctx) };
}
