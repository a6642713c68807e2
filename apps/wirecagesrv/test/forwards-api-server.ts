// The API with port forwards, wired as server.ts wires it, for the suites
// that call /v1/portforward, DELETE /v1/register or /v1/peers over real HTTP
// (a Unix socket in a temporary directory, as api.test.ts), with a real
// registry file and real forward listeners on 127.0.0.1 (there is no NAT
// namespace: nothing is relayed; the relay has its own lab test).
import { join } from 'node:path';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import { listenApi } from '../src/api/listen.js';
import { ProofVerifier } from '../src/api/proof.js';
import { createApiHandler, type ApiOptions } from '../src/api/routes.js';
import type { ForwardApiOptions } from '../src/api/forwards.js';
import { ForwardManager, restoreForwards } from '../src/forwards/index.js';
import type { PortRange } from '../src/forwards/ports.js';
import { SqliteRegistry, type Registry } from '../src/registry/index.js';

export const TOKEN = 'registration-token-0123456789';
export const ADMIN = 'admin-token-abcdefghijklmnop';
export const serverPriv = generatePrivateKey();
export const serverPub = publicKeyOf(serverPriv);

export interface ForwardsApi {
  sock: string;
  registry: Registry;
  manager: ForwardManager;
  /** Closes the API, the forwards and the registry; safe to call again. */
  stop: () => Promise<void>;
}

export interface ForwardsApiOptions {
  /** Registry file; default r.db in `dir`. */
  path?: string;
  /** A registry the caller opened (and closes) instead of the file. */
  registry?: Registry;
  /** --forward-ports; every port when absent. */
  ports?: PortRange;
  /** Opens the forwards the registry holds, as a restarting server does. */
  restore?: boolean;
  /** More of the API's options (onRegistered, onRemoved). */
  api?: Partial<ApiOptions>;
  /** More of the forwards' options (adminToken, rateLimit, maxPerPeer, publicAddress). */
  forwards?: Partial<ForwardApiOptions>;
}

/** The API on `dir`/api.sock; every request shares one source, so the limits are high unless `forwards.rateLimit` says otherwise. */
export async function serveForwardsApi(dir: string, opts: ForwardsApiOptions = {}): Promise<ForwardsApi> {
  const registry =
    opts.registry ??
    (await SqliteRegistry.open({
      location: opts.path ?? join(dir, 'r.db'),
      subnet: '10.200.100.0/24',
      subnet6: 'fd00:aa::/64',
    }));
  const manager = new ForwardManager({ listenAddress: '127.0.0.1', ports: opts.ports });
  if (opts.restore) await restoreForwards(registry, manager, { error() {}, warn() {}, info() {}, debug() {} });
  const handler = createApiHandler({
    registry,
    authToken: TOKEN,
    serverPublicKey: keyToBase64(serverPub),
    serverEndpoint: 'vpn.example.test:51820',
    mtu: 1420,
    dns: [],
    rateLimit: { burst: 1000 },
    ...opts.api,
    forwards: {
      manager,
      proof: new ProofVerifier({ serverPrivateKey: serverPriv, serverPublicKey: serverPub }),
      rateLimit: { burst: 1000, perMinute: 1000 },
      ...opts.forwards,
    },
  });
  const sock = join(dir, 'api.sock');
  const api = await listenApi(handler, { path: sock });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await api.close();
    await manager.closeAll();
    if (!opts.registry) await registry.close();
  };
  return { sock, registry, manager, stop };
}
