// The API fuzz's cases over well-formed HTTP: each takes a request of one
// route that would be accepted and breaks one thing in it, at one layer of
// the server's checks, which run in this order (apps/wirecagesrv/src/api):
//   route 404 -> method 405 -> client address (X-Forwarded-For) 400 -> limit 429
//   -> Content-Type 415 -> size 413 -> JSON 400 -> token 401 (400 for a
//   "token" that is not a string) -> key and fields 400 -> port range 403
//   -> key proof 401 (missing, malformed, stale, replayed) / 403 (wrong MAC)
//   -> peer 404 -> conflict 409.
// Everything else in the request stays valid (and random: extra fields,
// spellings of the same thing), so the expected status is known exactly.
// No case may succeed at changing anything: registrations, forwards and
// removals are only ever tried with a flaw, except the harmless reads.
import { keyProofHeader, keyProofKey, publicKeyOf } from '@wirecage/wg-engine';
import type { Req } from './fuzz-http.js';
import type { Prng } from './prng.js';
import {
  badContentType,
  badKey,
  badPort,
  badProtocol,
  badPublicPort,
  headerSafe,
  jsonContentType,
  jsonObject,
  jsonValue,
  keyText,
  lowOrderKey,
  notJsonObject,
  pctEncode,
  portLiteral,
  toJsonText,
  unicodeText,
  wrongToken,
  type JsonLike,
} from './fuzz-values.js';

export const BODY_LIMIT = 16 * 1024;

export const ROUTES = {
  register: { method: 'POST', path: '/v1/register' },
  deregister: { method: 'DELETE', path: '/v1/register' },
  'pf-post': { method: 'POST', path: '/v1/portforward' },
  'pf-delete': { method: 'DELETE', path: '/v1/portforward' },
  'pf-get': { method: 'GET', path: '/v1/portforward' },
  peers: { method: 'GET', path: '/v1/peers' },
} as const;
export type RouteName = keyof typeof ROUTES;
const BODY_ROUTES: RouteName[] = ['register', 'deregister', 'pf-post', 'pf-delete'];
const LIMITED_ROUTES: RouteName[] = ['register', 'deregister', 'pf-post', 'pf-delete', 'pf-get', 'peers'];
/** Methods each path answers; anything else is 405. */
export const ALLOWED: Record<string, string[]> = {
  '/v1/register': ['POST', 'DELETE'],
  '/v1/portforward': ['GET', 'POST', 'DELETE'],
  '/v1/peers': ['GET'],
  '/healthz': ['GET', 'HEAD'],
};

export interface Peer {
  priv: Buffer;
  pub: string;
}

export interface FuzzContext {
  token: string;
  admin: string;
  serverPublic: Buffer;
  serverPublicText: string;
  /** Registered before the fuzz; none may be removed or change address. */
  peers: Peer[];
  /** A forward peers[owner] holds (made before the fuzz, by the admin). */
  forward: { port: number; target: number; owner: number };
  ports: [number, number];
  /** The reverse proxy the server trusts (the fuzz's own address). */
  proxy: string;
}

export interface Expect {
  status: readonly number[];
  /** The error message must match. */
  error?: RegExp;
  /** A HEAD: the answer has no body. */
  head?: boolean;
}

export interface Exchange {
  req: Req;
  expect: Expect;
}

export interface HttpCase {
  kind: 'http';
  family: string;
  /** Sent one after the other. */
  steps: Exchange[];
  /** A limiter sequence: at least one step must be answered 429. */
  mustLimit?: boolean;
}

type Role = 'client' | 'admin';

/** A peer's key pair drawn from the PRNG (any 32 bytes are a private key once clamped). */
export function drawPeer(r: Prng): Peer {
  const priv = r.bytes(32);
  priv[0]! &= 248;
  priv[31] = (priv[31]! & 127) | 64;
  return { priv, pub: publicKeyOf(priv).toString('base64') };
}

export class HttpCases {
  private limitNet = 0;

  constructor(
    private readonly ctx: FuzzContext,
    private readonly r: Prng,
  ) {}

  // --- the parts of a request ---

  /** A client address the limiter has (almost surely) not seen: X-Forwarded-For or Forwarded, in every spelling it takes. */
  freshClient(): [string, string][] {
    const r = this.r;
    const v4 = `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`;
    const v6 = `2001:db8:${r.int(0, 0xffff).toString(16)}:${r.int(0, 0xffff).toString(16)}::${r.int(1, 0xffff).toString(16)}`;
    const junk = () =>
      r.pick(['unknown', '_hidden', 'not-an-address', headerSafe(unicodeText(r, 6)).replace(/[\s,";]/g, '') || 'x', '999.1.1.1']);
    return r.pick<() => [string, string][]>([
      () => [['X-Forwarded-For', v4]],
      () => [['X-Forwarded-For', `${v4}:${r.int(1, 65535)}`]],
      () => [['X-Forwarded-For', v6]],
      () => [['X-Forwarded-For', `[${v6}]:${r.int(1, 65535)}`]],
      // Left of the client: written by the client itself, never parsed.
      () => [['X-Forwarded-For', `${junk()}, ${v4}`]],
      // A trusted proxy's own hop on the right is skipped.
      () => [['X-Forwarded-For', `${v4}, ${this.ctx.proxy}`]],
      () => [['Forwarded', `for=${v4}`]],
      () => [['Forwarded', `for="[${v6}]:4711";proto=https`]],
      () => [['Forwarded', `by=_proxy;For=${v4};host=api.lab`]],
      () => [['Forwarded', `for=${junk()}, for="${v4}"`]],
    ])();
  }

  /** A client address header the server refuses (400), or both headers at once. */
  badClient(): [string, string][] {
    const r = this.r;
    const bad = r.pick([
      'unknown',
      '_hidden',
      '300.1.2.3',
      '1.2.3',
      '::ffff:',
      '[::1',
      'localhost',
      '[2001:db8::1]:123456',
      '10.1.2.3/24',
      headerSafe(unicodeText(r, 8)).replace(/[,"\s]/g, '') || '?',
    ]);
    return r.pick<() => [string, string][]>([
      () => [['X-Forwarded-For', bad]],
      () => [['X-Forwarded-For', `10.1.2.3, ${bad}`]],
      () => [['X-Forwarded-For', `${bad}, ${this.ctx.proxy}`]],
      () => [['X-Forwarded-For', ', ']],
      () => [['Forwarded', 'proto=https']],
      () => [['Forwarded', `for=${bad}`]],
      () => [['Forwarded', `for="${bad}"`]],
      () => [
        ['X-Forwarded-For', `10.${r.int(0, 255)}.0.2`],
        ['Forwarded', `for=10.${r.int(0, 255)}.0.1`],
      ],
    ])();
  }

  /** Credentials that are wrong, well-formed. */
  wrongAuth(): string {
    return this.bearer(wrongToken(this.r, [this.ctx.token, this.ctx.admin]));
  }

  private bearer(token: string): string {
    return this.r.pick([`Bearer ${token}`, `bearer ${token}`, `BEARER\t${token}`, `Bearer   ${token}  `]);
  }

  private tokenOf(role: Role): string {
    return role === 'admin' ? this.ctx.admin : this.ctx.token;
  }

  /** Extra fields the server ignores. */
  private extras(): Record<string, JsonLike> {
    const o: Record<string, JsonLike> = {};
    if (this.r.chance(0.3)) o[`x_${this.r.int(0, 99)}`] = jsonValue(this.r);
    // An own "__proto__" (as JSON.parse makes it) holding the token: a server reading through prototypes would take it.
    if (this.r.chance(0.1))
      Object.defineProperty(o, '__proto__', { value: { token: this.ctx.token }, enumerable: true, configurable: true, writable: true });
    return o;
  }

  /** The path of a route, sometimes in a spelling that reaches the same route. */
  private pathOf(route: RouteName, query = ''): string {
    const p = ROUTES[route].path;
    const r = this.r;
    if (!r.chance(0.1)) return `${p}${query}`;
    const form = r.pick([
      `/x/..${p}`,
      p.replace('/v1/', '/v1/./'),
      `//api.lab${p}`,
      p.replace('/v1/', '/v1\\'),
      `http://api.lab${p}`,
      `${p}#frag`,
    ]);
    // A fragment ends the path: the query goes before it.
    return form.endsWith('#frag') ? `${p}${query}#frag` : `${form}${query}`;
  }

  /**
   * A request of `route` with these parts; `body` is an object (serialised with the token field when
   * `bodyToken`) or raw bytes; `ct` null sends no Content-Type, undefined the JSON one.
   */
  request(
    route: RouteName,
    o: {
      client?: [string, string][];
      auth?: string | null;
      bodyToken?: JsonLike;
      body?: Record<string, JsonLike> | Buffer;
      ct?: string | null;
      proof?: (bodyBytes: Buffer) => string | null;
      query?: string;
      method?: string;
      path?: string;
    },
  ): Req {
    const headers: [string, string][] = [...(o.client ?? this.freshClient())];
    if (o.auth) headers.push(['Authorization', o.auth]);
    for (const [k, v] of headers) if (headerSafe(v) !== v) throw new Error(`fuzz generator bug: a control character in ${k}`);
    let body: Buffer | undefined;
    if (BODY_ROUTES.includes(route) || o.body !== undefined) {
      if (Buffer.isBuffer(o.body)) body = o.body;
      else {
        const fields = { ...this.extras(), ...(o.body ?? {}) };
        if (o.bodyToken !== undefined) fields.token = o.bodyToken;
        body = Buffer.from(toJsonText(fields));
      }
      const ct = o.ct === undefined ? jsonContentType(this.r) : o.ct;
      if (ct !== null) headers.push(['Content-Type', ct]);
    }
    const proof = o.proof?.(body ?? Buffer.alloc(0));
    if (proof) headers.push(['Wirecage-Proof', proof]);
    return { method: o.method ?? ROUTES[route].method, path: o.path ?? this.pathOf(route, o.query ?? ''), headers, body };
  }

  /** Valid credentials for `role` on `route`: the header, or (where the route reads it) the body's token field. */
  private auth(route: RouteName, role: Role): { auth?: string; bodyToken?: JsonLike } {
    const token = this.tokenOf(role);
    if (BODY_ROUTES.includes(route) && this.r.chance(0.3)) return { bodyToken: token };
    return { auth: this.bearer(token) };
  }

  /** A proof header of `peer` for this request, at `time` (unix seconds), over `key` as the request names it. */
  proofFor(peer: Peer, method: string, route: string, key: string, body: Buffer, time = Math.floor(Date.now() / 1000)): string {
    const mac = keyProofKey(peer.priv, this.ctx.serverPublic, Buffer.from(key, 'base64'), this.ctx.serverPublic);
    if (!mac) throw new Error('no proof key for a fuzz peer');
    return keyProofHeader(mac, { method, route, clientPublicKey: key, time, nonce: this.r.bytes(16).toString('base64url'), body });
  }

  private peer(): Peer {
    return this.r.pick(this.ctx.peers);
  }

  private inRange(): number {
    const [lo, hi] = this.ctx.ports;
    for (;;) {
      const p = this.r.int(lo, hi);
      if (p !== this.ctx.forward.port) return p;
    }
  }

  private outOfRange(): number {
    const [lo, hi] = this.ctx.ports;
    return this.r.chance(0.5) ? this.r.int(1, lo - 1) : this.r.int(hi + 1, 65535);
  }

  /** The fields of a valid request of `route` for `key` (none for a GET). */
  private fields(route: RouteName, key: JsonLike): Record<string, JsonLike> | undefined {
    const r = this.r;
    switch (route) {
      case 'register':
      case 'deregister':
        return { client_public_key: key };
      case 'pf-post':
        return {
          client_public_key: key,
          protocol: r.pick(['tcp', 'udp']),
          public_port: portLiteral(r, this.inRange()),
          target_port: portLiteral(r, r.int(1, 65535)),
        };
      case 'pf-delete':
        return { client_public_key: key, protocol: r.pick(['tcp', 'udp']), public_port: portLiteral(r, this.inRange()) };
      default:
        return undefined;
    }
  }

  private one(family: string, req: Req, status: number | readonly number[], error?: RegExp): HttpCase {
    const head = req.method === 'HEAD';
    return { kind: 'http', family, steps: [{ req, expect: { status: typeof status === 'number' ? [status] : status, error, head } }] };
  }

  // --- the families ---

  /** A path no route has (404, whatever the method). */
  path(): HttpCase {
    const r = this.r;
    for (;;) {
      const p = r.pick([
        () => `/${pctEncode(unicodeText(r, 12))}`,
        () =>
          r.pick([
            '/',
            '/v1',
            '/v1/',
            '/v2/register',
            '/v1/register/',
            '/V1/REGISTER',
            '/v1/regist%65r',
            '/v1//register',
            '/healthz/',
            '/v1/peers/x',
            '/.env',
            '/v1/portforward/1',
            '/%00',
            '/v1/register%00',
          ]),
        () => `/${'a/'.repeat(r.int(1, 1500))}`,
        () => `/v1/${pctEncode(unicodeText(r, 10))}`,
      ])();
      const route = new URL(p, 'http://api.invalid').pathname;
      if (ALLOWED[route] === undefined) {
        const method = r.pick(['GET', 'POST', 'DELETE', 'PUT', 'HEAD', 'OPTIONS', 'PATCH']);
        const req: Req = { method, path: p, headers: r.chance(0.5) ? this.freshClient() : [] };
        if (method !== 'GET' && method !== 'HEAD' && r.chance(0.5)) {
          req.body = Buffer.from(toJsonText(jsonObject(r)));
          req.headers.push(['Content-Type', 'application/json']);
        }
        return this.one('404 path', req, 404, /^no such endpoint: /);
      }
    }
  }

  /** A method a path does not answer (405, with Allow). */
  method(): HttpCase {
    const r = this.r;
    const path = r.pick(Object.keys(ALLOWED));
    const methods = [
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'DELETE',
      'OPTIONS',
      'PATCH',
      'TRACE',
      'PROPFIND',
      'PURGE',
      'LOCK',
      'MKCOL',
      'SEARCH',
      'LINK',
      'REPORT',
      'QUERY',
    ];
    const method = r.pick(methods.filter((m) => !ALLOWED[path]!.includes(m)));
    const req: Req = { method, path, headers: this.freshClient() };
    if (r.chance(0.3)) req.headers.push(['Authorization', this.bearer(r.chance(0.5) ? this.ctx.admin : this.ctx.token)]);
    return this.one('405 method', req, 405, /does not accept/);
  }

  /** A client address the limiter cannot key on (400). */
  client(): HttpCase {
    const route = this.r.pick(LIMITED_ROUTES);
    const role: Role = route === 'peers' || this.r.chance(0.3) ? 'admin' : 'client';
    return this.one(
      '400 client address',
      this.request(route, { client: this.badClient(), ...this.auth(route, role), body: this.fields(route, keyText(this.r)) }),
      400,
    );
  }

  /** A body that is not declared JSON (415). */
  contentType(): HttpCase {
    const route = this.r.pick(BODY_ROUTES);
    const body = this.r.chance(0.7) ? this.fields(route, keyText(this.r)) : Buffer.from(unicodeText(this.r, 40));
    return this.one(
      '415 content type',
      this.request(route, { ...this.auth(route, 'client'), body, ct: badContentType(this.r) ?? null }),
      415,
    );
  }

  /** A body that is not a JSON object (400). */
  json(): HttpCase {
    const route = this.r.pick(BODY_ROUTES);
    return this.one(
      '400 not a JSON object',
      this.request(route, { auth: this.bearer(this.ctx.token), body: notJsonObject(this.r) }),
      400,
      /JSON/,
    );
  }

  /** Credentials missing, malformed, wrong, or of the other kind (401; 400 for a non-string token field). */
  token(): HttpCase {
    const r = this.r;
    const route = r.pick(LIMITED_ROUTES);
    const body = (r.chance(0.5) ? this.fields(route, keyText(r)) : undefined) ?? jsonObject(r);
    delete body.token;
    const wrong = () => wrongToken(r, [this.ctx.token, this.ctx.admin]);
    const reads = BODY_ROUTES.includes(route);
    const flaws: (() => [object, number])[] = [
      () => [{}, 401],
      () => [
        {
          auth: r.pick([
            'Basic dXNlcjpwYXNz',
            'Bearer',
            `Bearer ${this.ctx.token} extra`,
            `Token ${this.ctx.token}`,
            `Bearer${this.ctx.token}`,
            `${this.ctx.token}`,
            'Bearer "x"y z',
            'Negotiate abc',
          ]),
        },
        401,
      ],
      () => [{ auth: this.bearer(wrong()) }, 401],
      // The header wins over a right token in the body.
      () => [{ auth: this.bearer(wrong()), bodyToken: this.ctx.token }, 401],
    ];
    if (reads) {
      flaws.push(() => [{ bodyToken: wrong() }, 401]);
      flaws.push(() => [{ bodyToken: r.pick<JsonLike>([null, 0, 1e308, true, [this.ctx.token], { token: this.ctx.token }, []]) }, 400]);
    }
    // Each kind of token is refused where the other is needed.
    if (route === 'register') flaws.push(() => [{ auth: this.bearer(this.ctx.admin) }, 401]);
    if (route === 'peers') flaws.push(() => [{ auth: this.bearer(this.ctx.token) }, 401]);
    const [auth, status] = r.pick(flaws)();
    return this.one('401 token', this.request(route, { ...auth, body }), status);
  }

  /** A malformed client_public_key, with valid credentials (400). */
  key(): HttpCase {
    const r = this.r;
    const route = r.pick<RouteName>(['register', 'register', 'deregister', 'pf-post', 'pf-delete', 'pf-get']);
    const role: Role = r.chance(0.5) ? 'admin' : 'client';
    if (route === 'pf-get') {
      const bad = badKey(r);
      // Only the client must name a key here; the admin may leave it out, not get it wrong.
      const query =
        role === 'client' && r.chance(0.2) ? '' : `?client_public_key=${pctEncode(typeof bad === 'string' ? bad : toJsonText(bad))}`;
      return this.one('400 key', this.request(route, { auth: this.bearer(this.tokenOf(role)), query }), 400);
    }
    const reg = route === 'register';
    const fields = this.fields(route, badKey(r))!;
    // Missing is allowed for the admin's DELETE /v1/portforward; anywhere else it is a bad key.
    if (r.chance(0.1) && !(route === 'pf-delete' && role === 'admin')) delete fields.client_public_key;
    if (reg && r.chance(0.15)) fields.client_public_key = r.chance(0.5) ? this.ctx.serverPublicText : ` ${this.ctx.serverPublicText}\n`;
    return this.one('400 key', this.request(route, { ...this.auth(route, reg ? 'client' : role), body: fields }), 400);
  }

  /** A key of small order: nothing can ever shake hands with it, so registering it is refused (400). */
  lowOrder(): HttpCase {
    return this.one(
      '400 low-order key',
      this.request('register', { ...this.auth('register', 'client'), body: { client_public_key: lowOrderKey(this.r) } }),
      400,
      /order/,
    );
  }

  /** A forward's protocol or port that is not one (400). */
  field(): HttpCase {
    const r = this.r;
    const route = r.pick<RouteName>(['pf-post', 'pf-delete']);
    const fields = this.fields(route, this.peer().pub)!;
    const bad = r.pick(route === 'pf-post' ? ['protocol', 'public_port', 'target_port'] : ['protocol', 'public_port']);
    if (r.chance(0.15)) delete fields[bad];
    else fields[bad] = bad === 'protocol' ? badProtocol(r) : route === 'pf-post' && bad === 'public_port' ? badPublicPort(r) : badPort(r);
    return this.one('400 field', this.request(route, { ...this.auth(route, r.chance(0.5) ? 'admin' : 'client'), body: fields }), 400);
  }

  /**
   * A public port outside --forward-ports (a squat), asked by the admin, or by a registered peer with
   * a valid proof of its own key (the attacker's way), or with none (403 all the same).
   */
  range(): HttpCase {
    const r = this.r;
    const peer = this.peer();
    const fields = this.fields('pf-post', peer.pub)!;
    fields.public_port = this.outOfRange();
    const role: Role = r.chance(0.3) ? 'admin' : 'client';
    const proof =
      role === 'client' && r.chance(0.7) ? (b: Buffer) => this.proofFor(peer, 'POST', '/v1/portforward', peer.pub, b) : undefined;
    return this.one(
      '403 port range',
      this.request('pf-post', { ...this.auth('pf-post', role), body: fields, proof }),
      403,
      /outside the ports/,
    );
  }

  /** A client's request for a registered peer with a proof missing, malformed, stale (401) or not from the key's owner (403). */
  proof(): HttpCase {
    const r = this.r;
    const route = r.pick<RouteName>(['pf-post', 'pf-delete', 'pf-get', 'deregister', 'deregister']);
    const owner = this.peer();
    const other = r.pick(this.ctx.peers.filter((p) => p !== owner));
    const { method, path } = ROUTES[route];
    const now = Math.floor(Date.now() / 1000);
    const farOff = () => (r.chance(0.5) ? -1 : 1) * r.int(400, 10_000_000);
    const keyForm = r.chance(0.9) ? owner.pub : lowOrderKey(r);
    const flaws: [(body: Buffer) => string | null, number][] = [
      [() => null, 401],
      [
        () =>
          r.pick([
            '',
            'x',
            '1.2.3.4',
            `${now}..`,
            `${now}.${r.bytes(15).toString('base64url')}.${r.bytes(32).toString('base64url')}`,
            `${now}.${r.bytes(16).toString('base64url')}.${r.bytes(31).toString('base64url')}`,
            `${now}.${r.bytes(16).toString('base64')}=.${r.bytes(32).toString('base64url')}`,
            `1${'0'.repeat(12)}.${r.bytes(16).toString('base64url')}.${r.bytes(32).toString('base64url')}`,
            `-${now}.${r.bytes(16).toString('base64url')}.${r.bytes(32).toString('base64url')}`,
            headerSafe(unicodeText(r, 30)) || '?',
          ]),
        401,
      ],
      // Stale or from the future, with a MAC that is right otherwise.
      [(b) => this.proofFor(owner, method, path, keyForm, b, now + farOff()), 401],
      // Well-formed, in time, wrong.
      [() => `${now + r.int(-100, 100)}.${r.bytes(16).toString('base64url')}.${r.bytes(32).toString('base64url')}`, 403],
      [(b) => this.proofFor(other, method, path, keyForm, b), 403],
      [(b) => this.proofFor(owner, method === 'GET' ? 'DELETE' : 'GET', path, keyForm, b), 403],
      [(b) => this.proofFor(owner, method, path === '/v1/register' ? '/v1/portforward' : '/v1/register', keyForm, b), 403],
      [(b) => this.proofFor(owner, method, path, keyForm, Buffer.concat([b, Buffer.from(' ')])), 403],
    ];
    // With a key of small order (which shares no secret with the server) no MAC can be right either: the same answers.
    const [proof, status] = r.pick(flaws);
    if (route === 'pf-get') {
      const query = `?client_public_key=${encodeURIComponent(keyForm)}`;
      return this.one('401/403 proof', this.request(route, { auth: this.bearer(this.ctx.token), query, proof }), status);
    }
    return this.one(
      '401/403 proof',
      this.request(route, { ...this.auth(route, 'client'), body: this.fields(route, keyForm), proof }),
      status,
    );
  }

  /** Things that do not exist, named by the admin or proved by their owner (404); another peer's forward (403). */
  notFound(): HttpCase {
    const r = this.r;
    const stranger = drawPeer(r);
    const f = this.ctx.forward;
    const owner = this.ctx.peers[f.owner]!;
    const notOwner = r.pick(this.ctx.peers.filter((p) => p !== owner));
    const v = r.int(0, 6);
    const admin = { auth: this.bearer(this.ctx.admin) };
    switch (v) {
      case 0:
        return this.one(
          '404 not found',
          this.request('pf-post', { ...admin, body: this.fields('pf-post', stranger.pub) }),
          404,
          /no peer is registered/,
        );
      case 1:
        return this.one('404 not found', this.request('deregister', { ...admin, body: { client_public_key: stranger.pub } }), 404);
      case 2:
        return this.one(
          '404 not found',
          this.request('pf-delete', { ...admin, body: this.fields('pf-delete', r.chance(0.5) ? owner.pub : stranger.pub) }),
          404,
        );
      case 3:
        // The forward's port, named with a key that is not its owner's: nothing is removed.
        return this.one(
          '404 not found',
          this.request('pf-delete', { ...admin, body: { client_public_key: notOwner.pub, protocol: 'tcp', public_port: f.port } }),
          404,
        );
      case 4: {
        const query = `?client_public_key=${encodeURIComponent(stranger.pub)}`;
        return this.one(
          '404 not found',
          this.request('pf-get', {
            auth: this.bearer(this.ctx.token),
            query,
            proof: (b) => this.proofFor(stranger, 'GET', '/v1/portforward', stranger.pub, b),
          }),
          404,
        );
      }
      case 5: {
        const fields = this.fields('pf-post', stranger.pub);
        return this.one(
          '404 not found',
          this.request('pf-post', {
            auth: this.bearer(this.ctx.token),
            body: fields,
            proof: (b) => this.proofFor(stranger, 'POST', '/v1/portforward', stranger.pub, b),
          }),
          404,
        );
      }
      default: {
        // A peer proving its own key cannot remove another peer's forward.
        const fields = { client_public_key: notOwner.pub, protocol: 'tcp', public_port: f.port };
        return this.one(
          '403 not yours',
          this.request('pf-delete', {
            auth: this.bearer(this.ctx.token),
            body: fields,
            proof: (b) => this.proofFor(notOwner, 'DELETE', '/v1/portforward', notOwner.pub, b),
          }),
          403,
          /another peer/,
        );
      }
    }
  }

  /** The admin asking for the held forward's port again: for another peer or target (409), or the same forward (200). */
  conflict(): HttpCase {
    const r = this.r;
    const f = this.ctx.forward;
    const owner = this.ctx.peers[f.owner]!;
    const v = r.int(0, 2);
    const key = v === 0 ? r.pick(this.ctx.peers.filter((p) => p !== owner)).pub : owner.pub;
    const target = v === 1 ? (f.target % 65535) + 1 : f.target;
    const body = { client_public_key: key, protocol: 'tcp', public_port: portLiteral(r, f.port), target_port: target };
    return this.one(
      v === 2 ? '200 same forward' : '409 conflict',
      this.request('pf-post', { auth: this.bearer(this.ctx.admin), body }),
      v === 2 ? 200 : 409,
    );
  }

  /** Reads that must keep working amid the rest (200). */
  control(): HttpCase {
    const r = this.r;
    return r.pick<() => HttpCase>([
      () => this.one('200 read', { method: 'GET', path: '/healthz', headers: [] }, 200),
      () => this.one('200 read', { method: 'HEAD', path: '/healthz', headers: [] }, 200),
      () => this.one('200 read', this.request('peers', { auth: this.bearer(this.ctx.admin) }), 200),
      () =>
        this.one(
          '200 read',
          this.request('pf-get', {
            auth: this.bearer(this.ctx.admin),
            query: r.chance(0.5) ? `?client_public_key=${encodeURIComponent(this.peer().pub)}` : '',
          }),
          200,
        ),
    ])();
  }

  /**
   * A proof used once, then again: on the same request (401, "already used"), from another address
   * (the same), or on a DELETE /v1/register of the same peer (403: the MAC covers method and route).
   */
  replay(): HttpCase {
    const r = this.r;
    if (r.chance(0.3)) {
      // DELETE /v1/register for a key nobody registered, proved by its holder: 404, and the proof is spent.
      const stranger = drawPeer(r);
      const body = { client_public_key: stranger.pub };
      const first = this.request('deregister', {
        auth: this.bearer(this.ctx.token),
        body,
        proof: (b) => this.proofFor(stranger, 'DELETE', '/v1/register', stranger.pub, b),
      });
      const again = {
        ...first,
        headers: [...first.headers.filter(([k]) => !/^(x-forwarded-for|forwarded)$/i.test(k)), ...this.freshClient()],
      };
      return {
        kind: 'http',
        family: 'replayed proof',
        steps: [
          { req: first, expect: { status: [404] } },
          { req: again, expect: { status: [401], error: /already used/ } },
        ],
      };
    }
    const p = this.peer();
    const query = `?client_public_key=${encodeURIComponent(p.pub)}`;
    const first = this.request('pf-get', {
      auth: this.bearer(this.ctx.token),
      query,
      proof: (b) => this.proofFor(p, 'GET', '/v1/portforward', p.pub, b),
    });
    const proof = first.headers.find(([k]) => k === 'Wirecage-Proof')![1];
    const v = r.int(0, 2);
    const second =
      v === 2
        ? this.request('deregister', { auth: this.bearer(this.ctx.token), body: { client_public_key: p.pub }, proof: () => proof })
        : {
            ...first,
            headers:
              v === 1
                ? [...first.headers.filter(([k]) => !/^(x-forwarded-for|forwarded)$/i.test(k)), ...this.freshClient()]
                : first.headers,
          };
    return {
      kind: 'http',
      family: 'replayed proof',
      steps: [
        { req: first, expect: { status: [200] } },
        { req: second, expect: v === 2 ? { status: [403] } : { status: [401], error: /already used/ } },
      ],
    };
  }

  /** `n` requests from one new client address to a route: the first `burst` pass to their own answer, then 429 comes. */
  limitSequence(route: RouteName, burst: number, n: number): HttpCase {
    const n3 = ++this.limitNet;
    const client: [string, string][] = [['X-Forwarded-For', `172.16.${n3 >> 8}.${n3 & 255}`]];
    const steps: Exchange[] = [];
    for (let i = 0; i < n; i++) {
      // Refill is 10 or 60 a minute: past the burst, a step may still pass if a token came back meanwhile.
      steps.push({
        req: this.request(route, { client, auth: this.wrongAuth(), body: this.fields(route, keyText(this.r)) }),
        expect: { status: i < burst ? [401] : [401, 429] },
      });
    }
    return { kind: 'http', family: '429 limit', steps, mustLimit: true };
  }

  /** A random case of the families above, by weight. */
  next(): HttpCase {
    const f = this.r.weighted({
      path: 5,
      method: 5,
      client: 6,
      contentType: 5,
      json: 8,
      token: 16,
      key: 9,
      lowOrder: 1,
      field: 7,
      range: 3,
      proof: 10,
      notFound: 4,
      conflict: 2,
      control: 3,
      replay: 1.5,
    });
    return this[f]();
  }

  /** Bodies over the limit, well-formed otherwise (413), or exactly at it (their own answer). */
  bigBody(size: number): { req: Req; expect: Expect } {
    const r = this.r;
    const route = r.pick(BODY_ROUTES);
    const base = this.request(route, {
      auth: this.bearer(wrongToken(r, [this.ctx.token, this.ctx.admin])),
      body: this.fields(route, keyText(r)),
    });
    // Padding inside the object keeps it JSON: only the size is wrong (in bytes: the fields may hold any unicode).
    const rest = Buffer.from(`",${base.body!.toString().slice(1)}`);
    const pad = size - rest.length - 6;
    if (pad < 0) throw new Error(`fuzz generator bug: a body of ${size} bytes cannot hold ${rest.length}`);
    base.body = Buffer.concat([Buffer.from(`{"p":"${'x'.repeat(pad)}`), rest]);
    return { req: base, expect: { status: [size > BODY_LIMIT ? 413 : 401] } };
  }
}
