// Where a peer whose handshakes go unanswered tries next. Its candidates are,
// in order, every address every endpoint it may use resolves to: a name with
// several A/AAAA records gives each (DNS round robin, as wireguard-go users
// expect of one name for several servers), an IP literal is a candidate of its
// own, and a server's answer may list several endpoints (a fleet's
// server_endpoints). The next candidate is the one after the peer's current
// address, cycling, so the one that just failed is skipped and every other is
// tried in turn; a peer whose address is no longer among them (the name moved)
// starts from the first. Names are looked up on the host's resolver, as stage
// 1 did: stage 2 runs in the host's network namespace.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Endpoint, parseHostPort } from '@wirecage/wg-engine';

export type Lookup = (host: string) => Promise<string[]>;

export const hostLookup: Lookup = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

export interface Candidates {
  list: Endpoint[];
  /** The names looked up and what each gave, for the logs: "vpn.example.org: 192.0.2.1, 192.0.2.2". */
  answers: string[];
  /** Why a name gave nothing ("cannot resolve vpn.example.org: ENOTFOUND"); the others' candidates stand. */
  errors: string[];
}

/** host and port of an endpoint text, or null when it is not host:port (the list was checked before: such an entry is skipped). */
function hostPort(text: string): { host: string; port: number } | null {
  try {
    const hp = parseHostPort(text, { names: true, what: 'endpoint' });
    return { host: hp.host.replace(/\.$/, ''), port: hp.port };
  } catch {
    return null;
  }
}

/** Whether any endpoint is a name (a look-up could give something new), rather than IP literals only. */
export function hasNames(endpoints: readonly string[]): boolean {
  return endpoints.some((e) => {
    const hp = hostPort(e);
    return hp !== null && !isIP(hp.host);
  });
}

/** Every address of every endpoint, in order, each once; names looked up with `resolve`, one after the other. */
export async function resolveCandidates(endpoints: readonly string[], resolve: Lookup = hostLookup): Promise<Candidates> {
  const seen = new Map<string, Endpoint>();
  const answers: string[] = [];
  const errors: string[] = [];
  for (const text of endpoints) {
    const hp = hostPort(text);
    if (!hp) continue;
    let addresses = [hp.host];
    if (!isIP(hp.host)) {
      try {
        addresses = await resolve(hp.host);
      } catch (err) {
        errors.push(`cannot resolve ${hp.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      answers.push(`${hp.host}: ${addresses.join(', ') || '(nothing)'}`);
    }
    for (const a of addresses) {
      const ep = Endpoint.of(a, hp.port);
      seen.set(ep.toString(), seen.get(ep.toString()) ?? ep);
    }
  }
  return { list: [...seen.values()], answers, errors };
}

/**
 * The index in `list` of the candidate to try after `current`: the next one, cycling, passing over
 * those in `tried` (this outage's, by text: a resolver that rotates its answers must not send the
 * peer back to a node that just failed while others are untried); once every other one was tried,
 * simply the next. The first when `current` is not among them; null when there is nothing else to
 * try (no candidate, or only `current`).
 */
export function nextCandidate(current: Endpoint | null, list: readonly Endpoint[], tried: ReadonlySet<string> = new Set()): number | null {
  const at = current ? list.findIndex((e) => e.equals(current.address, current.port)) : -1;
  if (list.length === 0 || (at === 0 && list.length === 1)) return null;
  const others = Array.from({ length: at < 0 ? list.length : list.length - 1 }, (_, i) => (at + 1 + i) % list.length);
  return others.find((k) => !tried.has(list[k]!.toString())) ?? others[0]!;
}
