// `wirecage run NAME --publish PUBLIC:TARGET[/udp]`: port forwards on the
// server for the life of the run. They are created after registration and
// before the cage starts; a refusal ends the run (exit 125) with the
// server's message, after removing those already made. They are removed when
// the command ends, also when a signal ends it (best effort, a few seconds
// at most: the server keeps a forward whose removal never arrived, and the
// next run with the same --publish takes it over).
//
// PUBLIC 0 asks the server for any free port of its --forward-ports range;
// the answer names it. The command learns every forward of the run, fixed or
// chosen, in WIRECAGE_PUBLISHED ("tcp:PUBLIC:TARGET,udp:PUBLIC:TARGET") and
// where the world reaches them in WIRECAGE_PUBLIC_ADDR.
import { constants } from 'node:os';
import { RunError } from '../cage/run-error.js';
import { callApi, type TlsTrust } from './http.js';
import { PROOF_HEADER, type ProofRequest } from './proof.js';

export interface PublishSpec {
  protocol: 'tcp' | 'udp';
  publicPort: number;
  targetPort: number;
}

/** What run NAME knows about the server it registered with. */
export interface ServerApi {
  apiUrl: string;
  token: string;
  /** Base64. */
  clientPublicKey: string;
  sign: (r: ProofRequest) => string;
  /** add-server --ca-file: its CA and the pinned certificate, for every request to this server. */
  tls?: TlsTrust;
  /** The host of the registration's server_endpoint: the public address when a forward answer names none (an earlier server). */
  endpointHost: string;
}

/** A forward the server made: the public port it listens on (chosen by it for PUBLIC 0) and where remote clients connect. */
export interface Published {
  protocol: 'tcp' | 'udp';
  publicPort: number;
  targetPort: number;
  publicAddress: string;
}

const ROUTE = '/v1/portforward';

export function parsePublish(text: string): PublishSpec {
  const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/i.exec(text.trim());
  const publicPort = Number(m?.[1]);
  const targetPort = Number(m?.[2]);
  if (!m || publicPort < 0 || publicPort > 65535 || targetPort < 1 || targetPort > 65535) {
    throw new RunError(
      `--publish "${text}" must be PUBLIC:TARGET or PUBLIC:TARGET/udp with ports from 1 to 65535, such as 28080:80 or 25353:53/udp, or PUBLIC 0 for any free port the server picks (the server takes public ports from its --forward-ports range, 20000-29999 by default)`,
    );
  }
  return { protocol: (m[3]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp', publicPort, targetPort };
}

export function formatPublish(p: PublishSpec): string {
  return `${p.protocol} ${p.publicPort}:${p.targetPort}`;
}

async function send(
  api: ServerApi,
  method: 'POST' | 'DELETE',
  fields: Record<string, unknown>,
  timeoutMs: number,
  doing: string,
  refused: string,
) {
  const body = JSON.stringify({ client_public_key: api.clientPublicKey, ...fields });
  const proof = api.sign({ method, route: ROUTE, clientPublicKey: api.clientPublicKey, body });
  return callApi(
    { method, url: `${api.apiUrl}${ROUTE}`, token: api.token, body, headers: { [PROOF_HEADER]: proof }, timeoutMs, doing, tls: api.tls },
    refused,
  );
}

/** Creates the forward; for PUBLIC 0, the port the server chose is in the answer (checked: in range, the right protocol). */
export async function createForward(api: ServerApi, p: PublishSpec, timeoutMs = 15_000): Promise<Published> {
  const { body } = await send(
    api,
    'POST',
    { protocol: p.protocol, public_port: p.publicPort, target_port: p.targetPort },
    timeoutMs,
    `create the forward ${formatPublish(p)} at`,
    `the forward ${formatPublish(p)}`,
  );
  // A fixed port needs no answer to be known (a minimal server may not repeat it); a chosen one does.
  const port = p.publicPort !== 0 && body.public_port === undefined ? p.publicPort : body.public_port;
  const wrong = (what: string) => new RunError(`${api.apiUrl}${ROUTE}: the answer to the forward ${formatPublish(p)} has ${what}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw wrong('no public_port from 1 to 65535');
  if (p.publicPort !== 0 && port !== p.publicPort) throw wrong(`public_port ${port}, not the one asked for`);
  const address = body.public_address;
  if (address !== undefined && address !== null && (typeof address !== 'string' || !/^[\w.:-]{1,253}$/.test(address)))
    throw wrong('a public_address that is neither an address nor a name');
  return { protocol: p.protocol, publicPort: port, targetPort: p.targetPort, publicAddress: address || api.endpointHost };
}

/** What the command (and --on-publish) learns of the run's forwards. */
export function publishedEnv(published: Published[]): Record<string, string> {
  return {
    WIRECAGE_PUBLISHED: published.map((p) => `${p.protocol}:${p.publicPort}:${p.targetPort}`).join(','),
    WIRECAGE_PUBLIC_ADDR: published[0]?.publicAddress ?? '',
  };
}

export function removeForward(api: ServerApi, p: PublishSpec, timeoutMs = 3_000) {
  return send(
    api,
    'DELETE',
    { protocol: p.protocol, public_port: p.publicPort },
    timeoutMs,
    `remove the forward ${formatPublish(p)} at`,
    `removing the forward ${formatPublish(p)}`,
  );
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Creates the forwards, runs `body` (the cage), and removes them afterwards
 * whatever happened. A stop signal that arrives before the cage runs ends
 * the run with 128+N once the forwards made so far are removed; while the
 * cage runs, signals are the cage's business and removal follows its exit.
 */
export async function withPublishedPorts(
  api: ServerApi,
  specs: PublishSpec[],
  warn: (msg: string) => void,
  body: (published: Published[]) => Promise<number>,
): Promise<number> {
  let stopped: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    stopped ??= sig;
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  const made: Published[] = [];
  try {
    for (const p of specs) {
      if (stopped) break;
      made.push(await createForward(api, p));
    }
    if (stopped) return 128 + constants.signals[stopped as NodeJS.Signals];
    return await body(made);
  } finally {
    const results = await Promise.allSettled(made.map((p) => removeForward(api, p)));
    for (const r of results)
      if (r.status === 'rejected') warn(`${(r.reason as Error).message}; the server keeps that forward until it is removed`);
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}
