import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));

describe('wirecage add-server / servers / remove-server', function () {
  this.timeout(20_000);
  let dir: string;
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, XDG_CONFIG_HOME: dir, WIRECAGE_TOKEN: '', WIRECAGE_CONFIG: '' },
    });
  // The local API below runs in this process, so `run` must not block the event loop.
  const cliAsync = (args: string[]) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, XDG_CONFIG_HOME: dir, WIRECAGE_TOKEN: '', WIRECAGE_CONFIG: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (c) => (stderr += c));
      p.on('close', (status) => resolve({ status, stderr }));
    });
  before(() => (dir = mkdtempSync(join(tmpdir(), 'wirecage-servers-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('adds servers to a 0600 config.toml, lists names and URLs but never tokens, and removes them', () => {
    const file = join(dir, 'wirecage', 'config.toml');
    const a = cli(['add-server', 'work', 'https://vpn.example.com:8443/', '--token', 'sekrit-token-1']);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(cli(['add-server', 'lab-2', 'http://10.9.8.7:8443', '--insecure-http', '--token', 'sekrit-token-2']).status, 0);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(dir, 'wirecage')), ['config.toml']);
    assert.match(
      readFileSync(file, 'utf8'),
      /^version = 1\n\n\[servers\.work\]\napi_url = "https:\/\/vpn\.example\.com:8443"\ntoken = "sekrit-token-1"\n/,
    );

    const list = cli(['servers']);
    assert.equal(list.status, 0);
    assert.equal(list.stdout, 'work   https://vpn.example.com:8443\nlab-2  http://10.9.8.7:8443\n');
    assert.doesNotMatch(list.stdout + list.stderr, /sekrit/);

    const rm = cli(['remove-server', 'work']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.equal(cli(['servers']).stdout, 'lab-2  http://10.9.8.7:8443\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = cli(['remove-server', 'work']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /no server named "work"/);
  });

  it("refuses bad names and URLs as usage errors (exit 2, as oclif's own), and a broken config.toml with file:line", () => {
    for (const name of ['', 'a.b', 'x'.repeat(33), 'sp ace']) {
      const r = cli(['add-server', name, 'http://a']);
      assert.equal(r.status, 2, name);
      assert.match(r.stderr, /is not valid: use 1 to 32/);
    }
    for (const [url, why] of [
      ['ftp://a', /must start with http:\/\/ or https:\/\//],
      ['not a url', /not a URL/],
      ['https://a/?q=1', /must not carry a query/],
    ] as const) {
      const r = cli(['add-server', 'ok', url]);
      assert.equal(r.status, 2, url);
      assert.match(r.stderr, why);
    }
    assert.equal(cli(['add-server', 'ok']).status, 2, "oclif's own: a missing argument");
    const cfgFile = join(dir, 'wirecage', 'config.toml');
    assert.doesNotMatch(existsSync(cfgFile) ? readFileSync(cfgFile, 'utf8') : '', /\[servers\.ok\]/, 'nothing was added');
    const other = mkdtempSync(join(tmpdir(), 'wirecage-servers-bad-'));
    try {
      const r = spawnSync('sh', [
        '-c',
        `mkdir -p ${other}/wirecage && printf 'version = 1\\n[servers.x]\\napi_url = true\\n' > ${other}/wirecage/config.toml`,
      ]);
      assert.equal(r.status, 0);
      const s = spawnSync(process.execPath, [BIN, 'servers'], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: other } });
      assert.equal(s.status, 1);
      assert.equal(s.stderr, `wirecage: ${other}/wirecage/config.toml:3: api_url: only "strings" and integers are supported here\n`);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  describe('run NAME against a local API', () => {
    let server: Server;
    let url: string;
    const seen: { auth?: string; body: Record<string, unknown> }[] = [];
    before(async () => {
      server = createServer((req, res) => {
        let data = '';
        req.on('data', (c) => (data += c));
        req.on('end', () => {
          seen.push({ auth: req.headers.authorization, body: JSON.parse(data) as Record<string, unknown> });
          res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"invalid token"}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => server.close());

    it('makes the key once (0600), sends the token in the header and the body, and exits 125 with the status and error', async () => {
      assert.equal(cli(['add-server', 'local', url, '--token', 'T1']).status, 0);
      const r = await cliAsync(['run', 'local', '--', 'true']);
      assert.equal(r.status, 125);
      assert.equal(r.stderr, `wirecage: ${url}/v1/register refused the registration: HTTP 401: invalid token\n`);
      const keyFile = join(dir, 'wirecage', 'keys', 'local.key');
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      const key = readFileSync(keyFile, 'utf8');
      assert.equal((await cliAsync(['run', 'local', '--', 'true'])).status, 125);
      assert.equal(readFileSync(keyFile, 'utf8'), key);
      assert.equal(seen.length, 2);
      assert.equal(seen[0]!.auth, 'Bearer T1');
      assert.equal(seen[0]!.body.token, 'T1');
      assert.equal(seen[0]!.body.client_public_key, seen[1]!.body.client_public_key);
      assert.ok(!existsSync(join(dir, 'wirecage', 'keys', 'other.key')));
    });

    it('names the known servers when NAME is unknown', () => {
      const r = cli(['run', 'nosuch', '--', 'true']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /no server named "nosuch" in .*config\.toml \(known: lab-2, local\)/);
    });
  });
});
