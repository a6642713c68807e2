// The API fuzz's client, run inside the lab's client namespace (the test's
// own process lives in the host's, which must not reach the lab):
//   node --import tsx fuzz-driver.ts < CONFIG_JSON
// CONFIG_JSON (on stdin, as it holds the tokens): DriverConfig. It registers
// a few valid peers and gives one a forward, sends at least `requests`
// malformed requests from a PRNG seeded with `seed` (FUZZ_CASES-style `only`
// ids send just those, for a replay), checks every answer, then checks that
// the valid peers kept their addresses, that nothing else was registered and
// that new registrations still work. Prints one JSON line: DriverReport.
import { HttpCases, drawPeer, type Expect, type FuzzContext, type HttpCase, type Peer } from './fuzz-cases.js';
import { HttpSender, needsRaw, rawExchange, serialize, type Answer, type Req } from './fuzz-http.js';
import { RawCases, type RawCase } from './fuzz-raw-cases.js';
import { Prng } from './prng.js';

export interface DriverConfig {
  host: string;
  port: number;
  token: string;
  admin: string;
  /** This namespace's address, which the server trusts as a reverse proxy. */
  proxy: string;
  seed: number;
  requests: number;
  ports: [number, number];
  only?: number[];
  concurrency?: number;
}

export interface PeerState {
  key: string;
  address4: string;
  address6: string;
}

export interface Failure {
  id: number;
  family: string;
  problem: string;
  request: string;
  answer?: string;
}

export interface DriverReport {
  seed: number;
  requests: number;
  answers: number;
  /** The requests other than the stalls: how many, and how long they took (the stalls run alongside, as long as the server's timeouts). */
  fastRequests: number;
  fastMs: number;
  stalls: number;
  durationMs: number;
  byStatus: Record<string, number>;
  byFamily: Record<string, { requests: number; failed: number }>;
  failures: number;
  samples: Failure[];
  /** The valid peers' registrations before the fuzz and at its end, and every peer listed at the end. */
  before: PeerState[];
  after: PeerState[];
  listed: PeerState[];
  forwards: { client_public_key: string; public_port: number; target_port: number }[];
  /** Problems of the checks after the fuzz (registering new peers, reading the lists). */
  afterProblems: string[];
}

const VALID_PEERS = 4;
const NEW_PEERS = 2;
const STALLS = 12;
const RAW_SHARE = 0.14;
const REQUEST_TIMEOUT_MS = 20_000;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

class Run {
  private readonly sender: HttpSender;
  private readonly secrets: [string, string][];
  readonly byStatus: Record<string, number> = {};
  readonly byFamily: Record<string, { requests: number; failed: number }> = {};
  readonly samples: Failure[] = [];
  failures = 0;
  requests = 0;
  answers = 0;

  constructor(private readonly cfg: DriverConfig) {
    this.sender = new HttpSender(cfg.host, cfg.port, cfg.concurrency ?? 32);
    this.secrets = [
      [cfg.admin, '<admin-token>'],
      [cfg.token, '<token>'],
    ];
  }

  /** Text for a report, tokens taken out. */
  private redact(text: string): string {
    let t = text;
    for (const [s, name] of this.secrets) t = t.split(s).join(name);
    return t.length > 600 ? `${t.slice(0, 600)}... (${t.length} chars)` : t;
  }

  private describeReq(req: Req): string {
    return this.redact(serialize(req).toString('utf8'));
  }

  private describeAnswer(a: Answer): string {
    return this.redact(`${a.status} ${JSON.stringify(a.headers)} ${a.body.toString('utf8')}`);
  }

  /** What is wrong with an answer, or null. */
  static problem(a: Answer, e: Expect): string | null {
    if (a.status >= 500) return `a server error (${a.status})`;
    if (!e.status.includes(a.status)) return `status ${a.status}, expected ${e.status.join(' or ')}`;
    const type = a.headers['content-type'];
    if (type !== 'application/json') return `Content-Type ${JSON.stringify(type)}, not application/json`;
    if (e.head) return a.body.length === 0 ? null : 'a body in the answer to a HEAD';
    let v: unknown;
    try {
      v = JSON.parse(a.body.toString('utf8'));
    } catch {
      return 'the body is not JSON';
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'the body is not a JSON object';
    if (a.status >= 400) {
      const err = (v as { error?: unknown }).error;
      if (typeof err !== 'string' || err === '') return 'an error answer without an "error" message';
      if (e.error && !e.error.test(err)) return `error ${JSON.stringify(err)} does not match ${e.error}`;
    }
    if (a.status === 429 && !(Number(a.headers['retry-after']) >= 1)) return '429 without a Retry-After';
    if (a.status === 405 && !a.headers.allow) return '405 without an Allow header';
    return null;
  }

  private family(name: string, requests: number): { requests: number; failed: number } {
    const f = (this.byFamily[name] ??= { requests: 0, failed: 0 });
    f.requests += requests;
    return f;
  }

  private fail(id: number, family: string, problem: string, request: string, answer?: string): void {
    this.failures++;
    this.byFamily[family]!.failed++;
    if (this.samples.length < 40) this.samples.push({ id, family, problem, request, answer });
  }

  private count(a: Answer): void {
    this.answers++;
    this.byStatus[a.status] = (this.byStatus[a.status] ?? 0) + 1;
  }

  /** One request, over node:http or, where it cannot carry it, raw. */
  async exchange(req: Req, head: boolean): Promise<Answer> {
    if (!needsRaw(req)) return this.sender.send(req, REQUEST_TIMEOUT_MS);
    const r = await rawExchange(this.cfg.host, this.cfg.port, {
      parts: [{ data: serialize(req) }],
      answers: 1,
      heads: [head],
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    if (r.answers.length === 0) throw new Error(`no answer (${r.end})`);
    return r.answers[0]!;
  }

  async runHttp(id: number, c: HttpCase): Promise<void> {
    this.family(c.family, c.steps.length);
    let limited = false;
    for (const [i, step] of c.steps.entries()) {
      this.requests++;
      let a: Answer;
      try {
        a = await this.exchange(step.req, step.expect.head ?? false);
      } catch (err) {
        this.fail(id, c.family, `step ${i + 1}: no answer: ${(err as Error).message}`, this.describeReq(step.req));
        return;
      }
      this.count(a);
      if (a.status === 429) limited = true;
      const p = Run.problem(a, step.expect);
      if (p) {
        this.fail(id, c.family, `step ${i + 1}: ${p}`, this.describeReq(step.req), this.describeAnswer(a));
        return;
      }
    }
    if (c.mustLimit && !limited)
      this.fail(id, c.family, `no 429 in ${c.steps.length} requests from one address`, this.describeReq(c.steps[0]!.req));
  }

  async runRaw(id: number, c: RawCase): Promise<void> {
    this.family(c.family, c.requests);
    this.requests += c.requests;
    const r = await rawExchange(this.cfg.host, this.cfg.port, { ...c.plan, heads: c.expect.map((e) => e.head ?? false) });
    const sent = this.redact(
      Buffer.concat(c.plan.parts.map((p) => p.data))
        .subarray(0, 600)
        .toString('latin1'),
    );
    for (const a of r.answers) this.count(a);
    if (r.answers.length < c.expect.length) {
      this.fail(
        id,
        c.family,
        `${r.answers.length} of ${c.expect.length} answers (the exchange ended: ${r.end}, ${r.rest} bytes left over)`,
        sent,
        r.answers.map((a) => this.describeAnswer(a)).join('\n'),
      );
      return;
    }
    for (const [i, e] of c.expect.entries()) {
      const p = Run.problem(r.answers[i]!, e);
      if (p) {
        this.fail(id, c.family, `answer ${i + 1}: ${p}`, sent, this.describeAnswer(r.answers[i]!));
        return;
      }
    }
    if (r.answers.length > c.expect.length)
      this.fail(
        id,
        c.family,
        `${r.answers.length} answers to ${c.expect.length} requests`,
        sent,
        r.answers.map((a) => this.describeAnswer(a)).join('\n'),
      );
  }

  /** A setup or check request that must succeed: its JSON body. */
  async must(what: string, req: Req, status: number): Promise<Record<string, unknown>> {
    const a = await this.sender.send(req, REQUEST_TIMEOUT_MS);
    if (a.status !== status) throw new Error(`${what}: ${this.describeAnswer(a)}`);
    return JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
  }

  close(): void {
    this.sender.close();
  }
}

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

async function main(): Promise<void> {
  const cfg = JSON.parse(await readStdin()) as DriverConfig;
  const root = new Prng(cfg.seed);
  const setup = root.fork();
  const stream = root.fork();
  const run = new Run(cfg);
  const only = cfg.only ? new Set(cfg.only) : null;
  let client = 0;
  const setupClient = (): [string, string][] => [['X-Forwarded-For', `192.168.${++client >> 8}.${client & 255}`]];
  const auth = (t: string): [string, string] => ['Authorization', `Bearer ${t}`];
  const register = (p: Peer) =>
    run.must(
      'registering a valid peer',
      {
        method: 'POST',
        path: '/v1/register',
        headers: [...setupClient(), auth(cfg.token), ['Content-Type', 'application/json']],
        body: json({ client_public_key: p.pub }),
      },
      200,
    );
  const state = (p: Peer, a: Record<string, unknown>): PeerState => ({
    key: p.pub,
    address4: String(a.client_address).split('/')[0]!,
    address6: String(a.client_address6).split('/')[0]!,
  });

  // Before: valid peers, one with a forward.
  const peers = Array.from({ length: VALID_PEERS }, () => drawPeer(setup));
  const answers: Record<string, unknown>[] = [];
  for (const p of peers) answers.push(await register(p));
  const before = peers.map((p, i) => state(p, answers[i]!));
  const serverPublicText = String(answers[0]!.server_public_key);
  const forward = { port: cfg.ports[0] + setup.int(0, 999), target: 80, owner: 0 };
  await run.must(
    'making the valid forward',
    {
      method: 'POST',
      path: '/v1/portforward',
      headers: [...setupClient(), auth(cfg.admin), ['Content-Type', 'application/json']],
      body: json({ client_public_key: peers[0]!.pub, protocol: 'tcp', public_port: forward.port, target_port: forward.target }),
    },
    201,
  );

  const ctx: FuzzContext = {
    token: cfg.token,
    admin: cfg.admin,
    serverPublic: Buffer.from(serverPublicText, 'base64'),
    serverPublicText,
    peers,
    forward,
    ports: cfg.ports,
    proxy: cfg.proxy,
  };
  const httpCases = new HttpCases(ctx, stream);
  const rawCases = new RawCases(httpCases, stream);

  // Fixed pieces first, whatever the seed: the limiter on each kind of route, and the stalls (run all at once, apart).
  let id = 0;
  const pieces: (HttpCase | RawCase)[] = [
    httpCases.limitSequence('register', 10, 25),
    httpCases.limitSequence('pf-get', 60, 75),
    httpCases.limitSequence('peers', 60, 75),
  ];
  const stalls = Array.from({ length: STALLS }, () => rawCases.stalled());
  let planned = 0;
  const take = (): [number, HttpCase | RawCase] | null => {
    for (;;) {
      if (planned >= cfg.requests && pieces.length === 0) return null;
      const c = pieces.shift() ?? (stream.chance(RAW_SHARE) ? rawCases.next() : httpCases.next());
      const n = c.kind === 'http' ? c.steps.length : c.requests;
      planned += n;
      const cid = id++;
      if (!only || only.has(cid)) return [cid, c];
    }
  };
  const runCase = (cid: number, c: HttpCase | RawCase) => (c.kind === 'http' ? run.runHttp(cid, c) : run.runRaw(cid, c));

  const started = Date.now();
  const stallIds = stalls.map(() => id++);
  const stalling = stalls.flatMap((c, i) => (!only || only.has(stallIds[i]!) ? [run.runRaw(stallIds[i]!, c)] : []));
  planned += stalling.length;
  const progress = setInterval(
    () =>
      process.stderr.write(`fuzz: ${run.requests} requests, ${run.failures} failures, ${((Date.now() - started) / 1000).toFixed(0)} s\n`),
    5000,
  );
  const workers = Array.from({ length: cfg.concurrency ?? 32 }, async () => {
    for (let next = take(); next; next = take()) await runCase(...next);
  });
  await Promise.all(workers);
  const fastMs = Date.now() - started;
  const fastRequests = run.requests - stalling.length;
  await Promise.all(stalling);
  clearInterval(progress);
  const durationMs = Date.now() - started;

  // After: the valid peers register again with the same addresses, new ones still can, and nobody else got in.
  const afterProblems: string[] = [];
  const after: PeerState[] = [];
  for (const p of peers) after.push(state(p, await register(p)));
  for (let i = 0; i < NEW_PEERS; i++) {
    const p = drawPeer(setup);
    const s = state(p, await register(p));
    if ([...before, ...after].some((b) => b.address4 === s.address4 || b.address6 === s.address6))
      afterProblems.push(`a new peer got an address already held: ${JSON.stringify(s)}`);
    after.push(s);
  }
  const listedBody = await run.must(
    'listing peers',
    { method: 'GET', path: '/v1/peers', headers: [...setupClient(), auth(cfg.admin)] },
    200,
  );
  const listed = (listedBody.peers as { client_public_key: string; client_address: string; client_address6: string }[]).map((p) => ({
    key: p.client_public_key,
    address4: p.client_address,
    address6: p.client_address6,
  }));
  const fwBody = await run.must(
    'listing forwards',
    { method: 'GET', path: '/v1/portforward', headers: [...setupClient(), auth(cfg.admin)] },
    200,
  );
  await run.must('health', { method: 'GET', path: '/healthz', headers: [] }, 200);
  run.close();

  const report: DriverReport = {
    seed: cfg.seed,
    requests: run.requests,
    answers: run.answers,
    fastRequests,
    fastMs,
    stalls: stalling.length,
    durationMs,
    byStatus: run.byStatus,
    byFamily: run.byFamily,
    failures: run.failures,
    samples: run.samples,
    before,
    after,
    listed,
    forwards: (fwBody.forwards as DriverReport['forwards']).map((f) => ({
      client_public_key: f.client_public_key,
      public_port: f.public_port,
      target_port: f.target_port,
    })),
    afterProblems,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz driver: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
