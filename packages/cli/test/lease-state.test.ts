// The registration `run NAME` keeps (servers/lease-state.ts) with real files:
// when it is reused (each boundary), when it stands in for a failed
// registration, the pinned server key, the file's mode and atomic writes; then
// configForServer against a local API (one registration for many runs, the
// API down, 429 with Retry-After, another server key), registerAfresh (stage
// 2's registration after a failed handshake), and add-server's --replace,
// --insecure-http and --token-file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import {
  LEASE_STATE_VERSION,
  PinMismatchError,
  checkPin,
  forgetRegistration,
  readLeaseState,
  reuseDecision,
  usableOnFailure,
  writeLeaseState,
  type LeaseState,
} from '../src/servers/lease-state.js';
import { configForServer, registerAfresh } from '../src/servers/register.js';
import { parseRetryAfter } from '../src/servers/http.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const SERVER_KEY = keyToBase64(publicKeyOf(generatePrivateKey()));
const OTHER_SERVER_KEY = keyToBase64(publicKeyOf(generatePrivateKey()));
const CLIENT_KEY = keyToBase64(publicKeyOf(generatePrivateKey()));
const URL_A = 'https://vpn.example.com:8443';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const LEASE = 1000_000; // ms

function answer(serverKey = SERVER_KEY, expires = new Date(T0 + LEASE).toISOString()): Record<string, unknown> {
  return {
    client_address: '10.200.100.2/24',
    client_address6: 'fd7a:5e:60::2/64',
    server_public_key: serverKey,
    server_endpoint: '127.0.0.1:51820',
    dns: ['10.200.100.1'],
    mtu: 1420,
    allowed_ips: ['0.0.0.0/0', '::/0'],
    persistent_keepalive: 25,
    lease_expires: expires,
  };
}

function state(over: Partial<LeaseState> = {}): LeaseState {
  return {
    version: LEASE_STATE_VERSION,
    api_url: URL_A,
    client_public_key: CLIENT_KEY,
    registered_at: new Date(T0).toISOString(),
    registration: answer(),
    pinned_server_public_key: SERVER_KEY,
    ...over,
  };
}

describe('lease state (keys/NAME.lease.json)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-lease-'));
    file = join(dir, 'keys', 'lab.lease.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const ctx = (now: number, over: { apiUrl?: string; clientPublicKey?: string } = {}) => ({
    apiUrl: URL_A,
    clientPublicKey: CLIENT_KEY,
    now,
    ...over,
  });

  it('reuses the stored answer until half its lease, then registers again; falls back on it until the lease ends', () => {
    writeLeaseState(file, state());
    const stored = readLeaseState(file);
    assert.ok(stored.state);
    assert.equal(stored.pin, SERVER_KEY);
    const half = T0 + LEASE / 2;
    assert.equal(reuseDecision(stored, ctx(T0)).reuse, true);
    assert.equal(reuseDecision(stored, ctx(half - 1)).reuse, true);
    assert.deepEqual(reuseDecision(stored, ctx(half)), { reuse: false, why: 'past half its lease' });
    assert.equal(reuseDecision(stored, ctx(T0 + LEASE + 1)).reuse, false);
    assert.ok(usableOnFailure(stored, ctx(half)));
    assert.ok(usableOnFailure(stored, ctx(T0 + LEASE - 1)));
    assert.equal(usableOnFailure(stored, ctx(T0 + LEASE)), null);
  });

  it('does not reuse an answer for another client key or API URL, one without a lease, or a missing or broken file', () => {
    writeLeaseState(file, state());
    const stored = readLeaseState(file);
    assert.deepEqual(reuseDecision(stored, ctx(T0, { clientPublicKey: keyToBase64(publicKeyOf(generatePrivateKey())) })), {
      reuse: false,
      why: 'for another client key',
    });
    assert.deepEqual(reuseDecision(stored, ctx(T0, { apiUrl: 'https://other.example.com:8443' })), {
      reuse: false,
      why: `for another API URL (${URL_A})`,
    });
    assert.equal(usableOnFailure(stored, ctx(T0, { apiUrl: 'https://other.example.com:8443' })), null);
    assert.equal(usableOnFailure(stored, ctx(T0, { clientPublicKey: 'x' })), null);

    const noLease = { ...answer() };
    delete noLease.lease_expires;
    writeLeaseState(file, state({ registration: noLease }));
    assert.deepEqual(reuseDecision(readLeaseState(file), ctx(T0)), { reuse: false, why: 'without a lease' });
    writeLeaseState(file, state({ registration: answer(OTHER_SERVER_KEY) }));
    assert.equal(reuseDecision(readLeaseState(file), ctx(T0)).reuse, false, 'an answer whose key is not the pinned one');

    rmSync(file);
    assert.deepEqual(reuseDecision(readLeaseState(file), ctx(T0)), { reuse: false, why: 'missing' });
    writeFileSync(file, '{"version": 1, "registration": {');
    assert.deepEqual(reuseDecision(readLeaseState(file), ctx(T0)), { reuse: false, why: 'not JSON' });
    writeFileSync(file, JSON.stringify({ ...state(), version: 99 }));
    assert.equal(reuseDecision(readLeaseState(file), ctx(T0)).reuse, false);
    chmodSync(file, 0o000);
    if (process.getuid?.() !== 0)
      assert.match((reuseDecision(readLeaseState(file), ctx(T0)) as { why: string }).why, /^unreadable \(EACCES\)$/);
  });

  it('refuses an answer with another server key than the pinned one, naming both and how to re-pin', () => {
    assert.doesNotThrow(() => checkPin(null, OTHER_SERVER_KEY, 'lab', URL_A, file));
    assert.doesNotThrow(() => checkPin(SERVER_KEY, SERVER_KEY, 'lab', URL_A, file));
    assert.throws(
      () => checkPin(SERVER_KEY, OTHER_SERVER_KEY, 'lab', URL_A, file),
      (err: Error) => {
        assert.ok(err instanceof PinMismatchError);
        assert.ok(err.name.endsWith('Error'), 'run exits 125 for it');
        assert.ok(err.message.includes(OTHER_SERVER_KEY) && err.message.includes(SERVER_KEY), err.message);
        assert.ok(err.message.includes(`wirecage add-server lab ${URL_A} --replace`), err.message);
        return true;
      },
    );
  });

  it('writes the file 0600 whatever the umask, atomically (a new inode, no temp file left)', () => {
    const old = process.umask(0o000);
    try {
      mkdirSync(join(dir, 'keys'), { recursive: true });
      writeFileSync(file, 'old content, loose mode\n', { mode: 0o644 });
      const held = join(dir, 'held');
      linkSync(file, held); // a reader holding the old file keeps it whole
      writeLeaseState(file, state());
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(readFileSync(held, 'utf8'), 'old content, loose mode\n');
      assert.notEqual(statSync(file).ino, statSync(held).ino, 'replaced by rename, not rewritten in place');
      assert.deepEqual(readdirSync(join(dir, 'keys')), ['lab.lease.json']);
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), state());
    } finally {
      process.umask(old);
    }
  });

  it('forgetRegistration drops the answer and keeps the pins; removes a file it cannot read back', () => {
    const fp = 'AB:'.repeat(31) + 'AB';
    writeLeaseState(file, state({ pinned_tls_certificate_sha256: fp }));
    assert.equal(readLeaseState(file).certPin, fp);
    assert.equal(forgetRegistration(file), null);
    const after = readLeaseState(file);
    assert.equal(after.state, null);
    assert.equal(after.pin, SERVER_KEY);
    assert.equal(after.certPin, fp);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, 'garbage');
    assert.equal(forgetRegistration(file), null);
    assert.equal(existsSync(file), false);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    assert.equal(parseRetryAfter('5'), 5);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter('soon'), null);
    assert.equal(parseRetryAfter(new Date(T0 + 7000).toUTCString(), T0), 7);
  });
});

describe('configForServer keeps the registration', function () {
  this.timeout(20_000);
  let dir: string;
  let server: Server;
  let url: string;
  let savedXdg: string | undefined;
  let calls: number;
  let reply: (req: IncomingMessage, res: ServerResponse) => void;
  const leaseFile = () => join(dir, 'wirecage', 'keys', 'lab.lease.json');
  const ok =
    (key = SERVER_KEY, leaseMs = 3600_000) =>
    (_req: IncomingMessage, res: ServerResponse) => {
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(JSON.stringify(answer(key, new Date(Date.now() + leaseMs).toISOString())));
    };

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        calls++;
        reply(req, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-lease-run-'));
    savedXdg = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = dir;
    mkdirSync(join(dir, 'wirecage'), { mode: 0o700 });
    writeFileSync(join(dir, 'wirecage', 'config.toml'), `version = 1\n\n[servers.lab]\napi_url = "${url}"\ntoken = "T"\n`, { mode: 0o600 });
    calls = 0;
    reply = ok();
  });
  afterEach(() => {
    if (savedXdg === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = savedXdg;
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers once, stores the answer 0600 with the pin, and reuses it without an API call', async () => {
    const first = await configForServer('lab');
    assert.equal(calls, 1);
    assert.equal(first.leaseStateFile, undefined, 'a fresh answer is not dropped by a failed handshake');
    assert.equal(statSync(leaseFile()).mode & 0o777, 0o600);
    const st = JSON.parse(readFileSync(leaseFile(), 'utf8')) as LeaseState;
    assert.equal(st.pinned_server_public_key, SERVER_KEY);
    assert.equal(st.api_url, url);
    assert.equal(st.registration.server_public_key, SERVER_KEY);
    for (let i = 0; i < 20; i++) {
      const again = await configForServer('lab');
      assert.equal(again.leaseStateFile, leaseFile());
      assert.equal(again.warning, null);
      assert.equal(keyToBase64(again.config.peers[0]!.publicKey), SERVER_KEY);
    }
    assert.equal(calls, 1);
    // Past half the lease: registers again.
    const later = await configForServer('lab', { now: () => Date.now() + 1800_000 });
    assert.equal(calls, 2);
    assert.equal(later.leaseStateFile, undefined);
  });

  it('with the API failing (503), uses a stored answer whose lease is not over, with a warning; not one that ended', async () => {
    await configForServer('lab');
    reply = (_req, res) => res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"error":"down"}');
    const r = await configForServer('lab', { now: () => Date.now() + 2000_000 });
    assert.equal(calls, 2);
    assert.equal(r.leaseStateFile, leaseFile());
    assert.match(
      r.warning!,
      /refused the registration: HTTP 503: down; using the registration stored in .*lab\.lease\.json \(lease until /,
    );
    assert.doesNotMatch(r.warning!, /\n(?!wirecage: warning: )/);
    await assert.rejects(configForServer('lab', { now: () => Date.now() + 3700_000 }), /HTTP 503: down/);
    // A refusal (401) is not a failure the stored answer stands in for.
    reply = (_req, res) => res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"invalid token"}');
    await assert.rejects(configForServer('lab', { now: () => Date.now() + 2000_000 }), /HTTP 401: invalid token/);
  });

  it('on 429 with nothing stored, waits Retry-After once and retries once; gives up past 30 s', async () => {
    const slept: number[] = [];
    const sleep = (ms: number) => {
      slept.push(ms);
      return Promise.resolve();
    };
    let n = 0;
    reply = (req, res) =>
      n++ === 0
        ? res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '5' }).end('{"error":"slow down"}')
        : ok()(req, res);
    await configForServer('lab', { sleep });
    assert.deepEqual(slept, [5000]);
    assert.equal(calls, 2);

    rmSync(leaseFile());
    reply = (_req, res) => res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '5' }).end('{"error":"slow down"}');
    await assert.rejects(configForServer('lab', { sleep }), /HTTP 429: slow down/);
    assert.deepEqual(slept, [5000, 5000], 'once only');
    assert.equal(calls, 4);
    reply = (_req, res) => res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '31' }).end('{"error":"slow down"}');
    await assert.rejects(configForServer('lab', { sleep }), /HTTP 429/);
    assert.deepEqual(slept, [5000, 5000]);
    assert.equal(calls, 5);
  });

  it('refuses a registration answer with another server key (pin kept, nothing stored), also after the answer was dropped', async () => {
    await configForServer('lab');
    const before = readFileSync(leaseFile(), 'utf8');
    reply = ok(OTHER_SERVER_KEY);
    await assert.rejects(configForServer('lab', { now: () => Date.now() + 1800_000 }), (err: Error) => {
      assert.equal(err.name, 'PinMismatchError');
      assert.ok(err.message.includes(SERVER_KEY) && err.message.includes(OTHER_SERVER_KEY));
      assert.ok(err.message.includes(`wirecage add-server lab ${url} --replace`));
      return true;
    });
    assert.equal(readFileSync(leaseFile(), 'utf8'), before);
    // Stage 2 after a failed handshake: the answer goes, the pin stays.
    assert.equal(forgetRegistration(leaseFile()), null);
    await assert.rejects(configForServer('lab'), /PinMismatch|is [A-Za-z0-9+/=]+: someone may be impersonating/);
    reply = ok();
    await configForServer('lab');
    assert.equal(readLeaseState(leaseFile()).state?.registration.server_public_key, SERVER_KEY);
  });

  it('registerAfresh (stage 2, after the stored answer failed its handshake) drops that answer and registers, honouring Retry-After once, never falling back on it', async () => {
    const first = await configForServer('lab');
    const stored = readLeaseState(leaseFile()).state!;
    const again = (await configForServer('lab')).reregister!;
    assert.equal(first.reregister, undefined, 'a fresh answer is not registered again');
    assert.equal(again.leaseFile, leaseFile());
    assert.equal(again.token, 'T');
    const key = readFileSync(join(dir, 'wirecage', 'keys', 'lab.key'), 'utf8').trim();
    const privateKey = Buffer.from(key, 'base64');

    const slept: number[] = [];
    const sleep = (ms: number) => {
      slept.push(ms);
      return Promise.resolve();
    };
    let n = 0;
    reply = (req, res) =>
      n++ === 0
        ? res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '3' }).end('{"error":"slow down"}')
        : ok()(req, res);
    const fresh = await registerAfresh(again, privateKey, { sleep, now: () => Date.parse(stored.registered_at) + 1000 });
    assert.deepEqual(slept, [3000], 'waited once as asked');
    assert.equal(calls, 3);
    assert.equal(keyToBase64(fresh.config.peers[0]!.publicKey), SERVER_KEY);
    const after = readLeaseState(leaseFile());
    assert.ok(after.state);
    assert.notEqual(after.state.registered_at, stored.registered_at);
    assert.equal(after.pin, SERVER_KEY);

    // The API failing: the stored answer (whose lease runs) is what just failed, so no fallback; it is dropped, the pin kept.
    reply = (_req, res) => res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"error":"down"}');
    await assert.rejects(registerAfresh(again, privateKey, { sleep }), /HTTP 503: down/);
    assert.equal(readLeaseState(leaseFile()).state, null);
    assert.equal(readLeaseState(leaseFile()).pin, SERVER_KEY);
    // Nor does it take another server key.
    reply = ok(OTHER_SERVER_KEY);
    await assert.rejects(registerAfresh(again, privateKey, { sleep }), PinMismatchError);
  });
});

describe('add-server: --replace, --insecure-http, --token-file', function () {
  this.timeout(20_000);
  let dir: string;
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: dir, WIRECAGE_TOKEN: '' } });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'wirecage-add-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces an existing NAME only with --replace, and then forgets its kept registration and pin', () => {
    assert.equal(cli(['add-server', 'work', 'https://a.example:8443', '--token', 'T']).status, 0);
    const lease = join(dir, 'wirecage', 'keys', 'work.lease.json');
    writeLeaseState(lease, state());
    const r = cli(['add-server', 'work', 'https://b.example:8443', '--token', 'T']);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      'wirecage: a server named "work" exists already (https://a.example:8443); to replace it (and forget its pinned key): wirecage add-server work https://b.example:8443 --replace\n',
    );
    assert.ok(existsSync(lease));
    const ok = cli(['add-server', 'work', 'https://b.example:8443', '--token', 'T', '--replace']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^replaced work \(https:\/\/b\.example:8443\)/);
    assert.ok(!existsSync(lease));
  });

  it('refuses http:// off loopback unless --insecure-http (a usage error: exit 2)', () => {
    const r = cli(['add-server', 'lan', 'http://10.9.8.7:8443', '--token', 'T']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /plain HTTP to a host other than loopback would send the token in clear.*--insecure-http/);
    assert.equal(cli(['add-server', 'lan', 'http://10.9.8.7:8443', '--token', 'T', '--insecure-http']).status, 0);
    for (const [n, u] of [
      ['l4', 'http://127.0.0.1:8443'],
      ['l6', 'http://[::1]:8443'],
      ['lh', 'http://localhost:8443'],
    ] as const) {
      const a = cli(['add-server', n, u, '--token', 'T']);
      assert.equal(a.status, 0, `${u}: ${a.stderr}`);
    }
    assert.equal(cli(['add-server', 'h', 'http://vpn.example.com', '--token', 'T']).status, 2);
  });

  it('reads --token-file FILE only when it is 0600 or stricter (exit 1), and not with --token (exit 2)', () => {
    const tok = join(dir, 'token');
    writeFileSync(tok, 'file-token-1\n', { mode: 0o644 });
    chmodSync(tok, 0o644);
    const loose = cli(['add-server', 'work', 'https://a.example:8443', '--token-file', tok]);
    assert.equal(loose.status, 1);
    assert.equal(loose.stderr, `wirecage: --token-file ${tok}: mode 0644 lets others read the token; chmod 600 ${tok}\n`);
    chmodSync(tok, 0o600);
    const r = cli(['add-server', 'work', 'https://a.example:8443', '--token-file', tok]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(readFileSync(join(dir, 'wirecage', 'config.toml'), 'utf8'), /token = "file-token-1"\n/);
    const both = cli(['add-server', 'two', 'https://a.example:8443', '--token-file', tok, '--token', 'x']);
    assert.equal(both.status, 2);
    assert.equal(both.stderr, 'wirecage: --token and --token-file both give the token: give one of them\n');
    const missing = cli(['add-server', 'three', 'https://a.example:8443', '--token-file', join(dir, 'nope')]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `wirecage: --token-file ${join(dir, 'nope')}: ENOENT\n`);
  });
});
