// Stage 2, while the command runs: handshakes with the server have gone
// unanswered for --reresolve-after seconds (heal.ts). Perhaps the server
// forgot this client (`wirecagesrv peers remove`, an ended lease, a lost
// registry), which no handshake can tell: register again (registering is
// idempotent: a server that still knows the client answers the same
// addresses and renews the lease) and store the answer, both pins checked.
// The tunnel stays as it is, so the command keeps its sockets: the answer
// may only move the server's endpoint; other addresses for the cage are
// reported, not applied (the command's sockets are bound to the old ones).
import { isIP } from 'node:net';
import { Endpoint, formatCidr, parseCidr, type Logger } from '@wirecage/wg-engine';
import type { CageSpec } from '../cage/spec.js';
import type { HealPeer } from '../cage/heal.js';
import { hostLookup } from '../cage/heal-resolve.js';
import { renewRegistration, type ReRegistration } from './register.js';

const hostOf = (cidr: string) => parseCidr(cidr.replace(/\/\d+$/, '')).address.toString('hex');

/** Registers again; true when the server answered (a handshake is worth starting at once). Rejects with why not. */
export async function recheckLease(server: ReRegistration, spec: CageSpec, peers: HealPeer[], log: Logger): Promise<boolean> {
  const fresh = await renewRegistration(server, Buffer.from(spec.privateKey, 'base64'));
  if (fresh.warning) log.warn(fresh.warning);
  log.info(`handshakes failing: registered again with ${server.apiUrl} (lease until ${fresh.leaseExpires ?? '?'})`);
  const had = new Set(spec.addresses.map(hostOf));
  const given = fresh.config.interface.addresses;
  if (given.some((a) => !had.has(a.address.toString('hex')))) {
    log.warn(
      `${server.apiUrl} now gives this client ${given.map(formatCidr).join(', ')}, not ${spec.addresses.join(', ')}: the cage keeps its addresses, so the tunnel carries nothing until the run is started again`,
    );
  }
  const endpoint = fresh.config.peers[0]?.endpoint;
  const hp = peers[0];
  if (endpoint && hp && `${endpoint.host}:${endpoint.port}` !== hp.endpoint) {
    const address = isIP(endpoint.host) ? endpoint.host : (await hostLookup(endpoint.host))[0];
    if (address) {
      const was = hp.peer.endpoint?.toString() ?? 'none';
      hp.peer.endpoint = Endpoint.of(address, endpoint.port);
      log.info(`peer ${hp.peer.name}: the server's answer moves its endpoint ${was} -> ${hp.peer.endpoint.toString()}`);
    }
  }
  return true;
}
