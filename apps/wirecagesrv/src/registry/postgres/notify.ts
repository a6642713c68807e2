// Changes travel between nodes as NOTIFY payloads on one channel. The store
// sends each inside the transaction (or the one statement) of the write it
// describes, so PostgreSQL delivers it at commit and never for a write that
// rolled back. A payload is the change itself as JSON (a few dozen bytes, far
// below NOTIFY's 8000); what arrives is checked field by field, since any
// role that may connect can NOTIFY on the channel too.
import type { ForwardProtocol, RegistryChange } from '../types.js';

export const CHANNEL = 'wirecagesrv_changes';

/** SQL that sends `$n` (the encoded change) on the channel; a query that selects it sends it once per row. */
export const notifySql = (param: string): string => `pg_notify('${CHANNEL}', ${param})`;

export function encodeChange(c: RegistryChange): string {
  return JSON.stringify(c);
}

const KEY = /^[A-Za-z0-9+/]{43}=$/;
const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function isProtocol(p: unknown): p is ForwardProtocol {
  return p === 'tcp' || p === 'udp';
}

/** The change a payload describes, or an Error saying why it is none. */
export function decodeChange(payload: string): RegistryChange | Error {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    return new Error('it is not JSON');
  }
  if (typeof v !== 'object' || v === null) return new Error('it is not an object');
  const node = v.node;
  if (typeof node !== 'string' || !NODE.test(node)) return new Error('its node is missing or malformed');
  switch (v.kind) {
    case 'peer-added':
    case 'peer-removed':
    case 'session-moved': {
      const publicKey = v.publicKey;
      if (typeof publicKey !== 'string' || !KEY.test(publicKey)) return new Error('its public key is missing or malformed');
      return { kind: v.kind, publicKey, node };
    }
    case 'forward-added':
    case 'forward-removed': {
      const { protocol, publicPort } = v;
      if (!isProtocol(protocol)) return new Error('its protocol is not tcp or udp');
      if (typeof publicPort !== 'number' || !Number.isInteger(publicPort) || publicPort < 1 || publicPort > 65535) {
        return new Error('its public port is not 1-65535');
      }
      return { kind: v.kind, protocol, publicPort, node };
    }
    default:
      return new Error(`its kind ${JSON.stringify(v.kind)} is unknown`);
  }
}
