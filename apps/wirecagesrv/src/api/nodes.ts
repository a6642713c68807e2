// GET /v1/nodes (admin): the servers sharing this registry, as their
// heartbeats say (fleet/heartbeat.ts), each with the sessions it holds. A
// server with a registry of its own (SQLite) answers with itself alone.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LIVE_WITHIN_MS, type NodeInfo } from '../fleet/heartbeat.js';
import { fleetNodes } from '../fleet/nodes.js';
import type { NodeRecord, Registry } from '../registry/index.js';
import { isAdmin } from './caller.js';
import { HttpError } from './errors.js';
import { sendJson } from './json.js';

/** One entry of GET /v1/nodes. */
export interface NodeResponse {
  name: string;
  /** What the node tells clients (--wg-endpoint). */
  endpoint: string;
  api: string;
  started_at: string;
  heartbeat: string;
  /** Peers whose last handshake was with it. */
  sessions: number;
  /** Heard from within the last three heartbeats. */
  live: boolean;
}

export function nodesHandler(registry: Registry, self: NodeInfo, adminToken: string | undefined, limit: (req: IncomingMessage) => void) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    limit(req);
    if (!isAdmin(req, adminToken)) {
      throw new HttpError(401, 'listing nodes needs the admin token (wirecagesrv up --admin-token-file)', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    }
    const now = Date.now();
    const nodes = await fleetNodes(registry, self);
    sendJson(res, 200, { nodes: nodes.map((n) => answer(n, now)) });
  };
}

function answer(n: NodeRecord, now: number): NodeResponse {
  return {
    name: n.name,
    endpoint: n.endpoint,
    api: n.api,
    started_at: n.startedAt.toISOString(),
    heartbeat: n.heartbeat.toISOString(),
    sessions: n.sessions,
    live: now - n.heartbeat.getTime() <= LIVE_WITHIN_MS,
  };
}
