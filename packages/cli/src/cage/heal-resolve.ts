// Moving a peer whose handshakes have gone unanswered for --reresolve-after
// seconds to its next candidate (heal-candidates.ts: every address of every
// endpoint it may use, the names looked up again now): a server whose name
// moved, or one node of several that died. Again every period while the peer
// keeps failing, so the candidates are tried in turn. Only the peer's endpoint
// changes: the cage, its addresses and the command's sockets stay as they are.
import type { Logger, Peer } from '@wirecage/wg-engine';
import { nextCandidate, resolveCandidates, type Lookup } from './heal-candidates.js';

export { hostLookup, type Lookup } from './heal-candidates.js';

export interface Move {
  moved: boolean;
  /** What kept the peer where it was when nothing could be resolved; null otherwise. */
  error: string | null;
}

/**
 * Resolves `endpoints` and points `peer` at the candidate after its current address, if there is
 * another; `failedForS`: how long its handshakes have gone unanswered there, for the log. `tried`:
 * the addresses tried in this outage (heal-candidates.ts's nextCandidate), kept up to date here;
 * the caller empties it when a handshake succeeds.
 */
export async function moveToNext(
  peer: Peer,
  endpoints: readonly string[],
  failedForS: number,
  log: Logger,
  opts: { resolve?: Lookup; tried?: Set<string> } = {},
): Promise<Move> {
  const tried = opts.tried ?? new Set<string>();
  const { list, answers, errors } = await resolveCandidates(endpoints, opts.resolve);
  for (const e of errors) log.info(`peer ${peer.name}: ${e} (${list.length ? 'trying the other addresses' : 'trying again later'})`);
  if (answers.length) log.debug(`peer ${peer.name}: ${answers.join('; ')}`);
  const was = peer.endpoint;
  const next = nextCandidate(was, list, tried);
  if (next === null) {
    if (list.length) log.debug(`peer ${peer.name}: ${list[0]!.toString()} is still the only address to try`);
    return { moved: false, error: list.length ? null : errors.join('; ') || null };
  }
  const ep = list[next]!;
  // Every other one tried already: a new round.
  if (tried.has(ep.toString())) tried.clear();
  if (was) tried.add(was.toString());
  tried.add(ep.toString());
  peer.endpoint = ep;
  log.info(
    `peer ${peer.name}: handshakes unanswered for ${failedForS} s on ${was?.toString() ?? '(no endpoint)'}; trying ${ep.toString()} (${next + 1} of ${list.length})`,
  );
  return { moved: true, error: null };
}
