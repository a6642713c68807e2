// The endpoints a registration answer offers. A fleet of wirecagesrv nodes
// (one key, one tunnel addressing, every node holding every peer) answers
// `server_endpoints`: every endpoint a client may use, the first being
// `server_endpoint`, which stays for older clients. An older server sends
// `server_endpoint` alone, which is a list of one. Stage 2 fails over along
// this list (cage/heal-candidates.ts), reading it from the stored answer, so
// an answer renewed while the command runs (lease-recheck.ts) is followed too.
import { parseEndpoint } from '../config/wg-quick.js';
import { readLeaseState } from './lease-state.js';

export class EndpointListError extends Error {}

const HOST_PORT = 'not host:port, IPv4:port or [IPv6]:port with a port in 1-65535';

/**
 * The answer's endpoints in its order, server_endpoint first (even were the list to put another
 * first), each once. Throws EndpointListError (naming the field, then why) when an endpoint is not
 * host:port or the list is not a non-empty list of strings.
 */
export function serverEndpoints(answer: { server_endpoint?: unknown; server_endpoints?: unknown }): string[] {
  const first = answer.server_endpoint;
  if (typeof first !== 'string' || !parseEndpoint(first)) throw new EndpointListError(`server_endpoint ${HOST_PORT}`);
  const list = answer.server_endpoints;
  if (list === undefined) return [first];
  if (!Array.isArray(list) || list.length === 0) throw new EndpointListError('server_endpoints not a non-empty list');
  for (const e of list) {
    if (typeof e !== 'string' || !parseEndpoint(e)) throw new EndpointListError(`server_endpoints entry ${JSON.stringify(e)} ${HOST_PORT}`);
  }
  return [...new Set([first, ...(list as string[])])];
}

/** The endpoints of the answer stored in `leaseFile`, or null when there is no usable one (stage 2 then keeps the peer's own). */
export function storedServerEndpoints(leaseFile: string): string[] | null {
  const registration = readLeaseState(leaseFile).state?.registration;
  if (!registration) return null;
  try {
    return serverEndpoints(registration);
  } catch {
    return null;
  }
}

/** What a peer may fail over along: its server's stored endpoints (a run of a server), else its own endpoint. */
export function peerEndpoints(leaseFile: string | undefined, own: string | undefined): string[] {
  return (leaseFile !== undefined ? storedServerEndpoints(leaseFile) : null) ?? (own === undefined ? [] : [own]);
}
