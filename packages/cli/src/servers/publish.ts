// `wirecage run NAME --publish PUBLIC:TARGET[/udp]`: port forwards on the
// server for the life of the run. They are created after registration and
// before the cage starts; a refusal ends the run (exit 125) with the
// server's message, after removing those already made. They are removed when
// the command ends, also when a signal ends it (best effort, a few seconds
// at most: the server keeps a forward whose removal never arrived, and the
// next run with the same --publish takes it over).
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
}

const ROUTE = '/v1/portforward';

export function parsePublish(text: string): PublishSpec {
  const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/i.exec(text.trim());
  const publicPort = Number(m?.[1]);
  const targetPort = Number(m?.[2]);
  if (!m || publicPort < 1 || publicPort > 65535 || targetPort < 1 || targetPort > 65535) {
    throw new RunError(`--publish "${text}" must be PUBLIC:TARGET or PUBLIC:TARGET/udp with ports from 1 to 65535, such as 28080:80 or 25353:53/udp (the server takes public ports from its --forward-ports range, 20000-29999 by default)`);
  }
  return { protocol: (m[3]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp', publicPort, targetPort };
}

export function formatPublish(p: PublishSpec): string {
  return `${p.protocol} ${p.publicPort}:${p.targetPort}`;
}

async function send(api: ServerApi, method: 'POST' | 'DELETE', fields: Record<string, unknown>, timeoutMs: number, doing: string, refused: string) {
  const body = JSON.stringify({ client_public_key: api.clientPublicKey, ...fields });
  const proof = api.sign({ method, route: ROUTE, clientPublicKey: api.clientPublicKey, body });
  return callApi({ method, url: `${api.apiUrl}${ROUTE}`, token: api.token, body, headers: { [PROOF_HEADER]: proof }, timeoutMs, doing, tls: api.tls }, refused);
}

export function createForward(api: ServerApi, p: PublishSpec, timeoutMs = 15_000) {
  return send(api, 'POST', { protocol: p.protocol, public_port: p.publicPort, target_port: p.targetPort }, timeoutMs, `create the forward ${formatPublish(p)} at`, `the forward ${formatPublish(p)}`);
}

export function removeForward(api: ServerApi, p: PublishSpec, timeoutMs = 3_000) {
  return send(api, 'DELETE', { protocol: p.protocol, public_port: p.publicPort }, timeoutMs, `remove the forward ${formatPublish(p)} at`, `removing the forward ${formatPublish(p)}`);
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Creates the forwards, runs `body` (the cage), and removes them afterwards
 * whatever happened. A stop signal that arrives before the cage runs ends
 * the run with 128+N once the forwards made so far are removed; while the
 * cage runs, signals are the cage's business and removal follows its exit.
 */
export async function withPublishedPorts(api: ServerApi, specs: PublishSpec[], warn: (msg: string) => void, body: () => Promise<number>): Promise<number> {
  let stopped: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    stopped ??= sig;
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  const made: PublishSpec[] = [];
  try {
    for (const p of specs) {
      if (stopped) break;
      await createForward(api, p);
      made.push(p);
    }
    if (stopped) return 128 + constants.signals[stopped as NodeJS.Signals];
    return await body();
  } finally {
    const results = await Promise.allSettled(made.map((p) => removeForward(api, p)));
    for (const r of results) if (r.status === 'rejected') warn(`${(r.reason as Error).message}; the server keeps that forward until it is removed`);
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}
