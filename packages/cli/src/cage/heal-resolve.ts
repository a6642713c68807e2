// Following a server whose name moved: when handshakes with a peer have gone
// unanswered for --reresolve-after seconds, its endpoint's name is looked up
// again and the peer is pointed at the new address; again every period while
// it keeps failing. Stage 2 runs in the host's network namespace, so the
// lookup uses the host's resolver, as stage 1's did. An endpoint written as an
// IP address is never looked up.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Endpoint, parseHostPort, type Logger, type Peer } from '@wirecage/wg-engine';

export interface ResolvedName {
  host: string;
  port: number;
}

/** The name to look up again, or null for an IP-literal (or missing, or unparsable) endpoint. */
export function endpointName(text: string | undefined): ResolvedName | null {
  if (!text) return null;
  let hp;
  try {
    hp = parseHostPort(text, { names: true, what: 'endpoint' });
  } catch {
    return null;
  }
  return isIP(hp.host) ? null : { host: hp.host.replace(/\.$/, ''), port: hp.port };
}

/**
 * The address to try next among a name's current addresses: the first when the peer's address is
 * no longer among them, else the one after it (a name with several servers, one of them down), or
 * null when the peer already has the only one.
 */
export function nextAddress(current: Endpoint | null, port: number, addresses: string[]): string | null {
  if (addresses.length === 0) return null;
  const at = current && current.port === port ? addresses.indexOf(current.address) : -1;
  if (at < 0) return addresses[0]!;
  if (addresses.length === 1) return null;
  return addresses[(at + 1) % addresses.length]!;
}

export type Lookup = (host: string) => Promise<string[]>;

export const hostLookup: Lookup = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** Looks `name` up and moves `peer` to another address when there is one; resolves to what happened, for logs and state. */
export async function reresolve(
  peer: Peer,
  name: ResolvedName,
  log: Logger,
  resolve: Lookup = hostLookup,
): Promise<{ moved: boolean; error: string | null }> {
  let addresses: string[];
  try {
    addresses = await resolve(name.host);
  } catch (err) {
    const error = `cannot resolve ${name.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    log.info(`peer ${peer.name}: ${error} (trying again later)`);
    return { moved: false, error };
  }
  const was = peer.endpoint;
  const next = nextAddress(was, name.port, addresses);
  if (next === null) {
    log.debug(`peer ${peer.name}: ${name.host} still resolves to ${was?.address ?? '(nothing)'}`);
    return { moved: false, error: null };
  }
  const ep = Endpoint.of(next, name.port);
  peer.endpoint = ep;
  log.info(
    `peer ${peer.name}: ${name.host} resolves to ${addresses.join(', ')}: endpoint ${was?.toString() ?? 'none'} -> ${ep.toString()}`,
  );
  return { moved: true, error: null };
}
