import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const cli = (args: string[], input?: string) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input });

describe('wirecage CLI', function () {
  this.timeout(20_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'wirecage-cli-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keygen prints a key whose public key matches `wg pubkey`', () => {
    const key = cli(['keygen']).stdout;
    assert.match(key, /^[A-Za-z0-9+/]{43}=\n$/);
    const ours = cli(['pubkey'], key);
    assert.equal(ours.status, 0);
    assert.equal(ours.stdout, execFileSync('wg', ['pubkey'], { input: key, encoding: 'utf8' }));
  });

  it('keygen --out writes a 0600 key file atomically, leaving no temp file', () => {
    const out = join(dir, 'keys', 'work.key');
    assert.equal(cli(['keygen', '--out', out]).status, 0);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700);
    assert.match(readFileSync(out, 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
    assert.deepEqual(readdirSync(join(dir, 'keys')), ['work.key']);
  });

  it('pubkey refuses input that is not a key, exit 1', () => {
    const r = cli(['pubkey'], 'not a key\n');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not a WireGuard key/);
  });

  it('run exits 125 with file:line:key for a bad config, before touching any namespace', () => {
    const conf = join(dir, 'bad.conf');
    writeFileSync(conf, '[Interface]\nPrivateKey = nope\n');
    const r = cli(['run', '-c', conf, '--', 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /bad\.conf:2: PrivateKey: not a WireGuard key/);
    const missing = cli(['run', '-c', join(dir, 'none.conf'), '--', 'true']);
    assert.equal(missing.status, 125);
    assert.match(missing.stderr, /cannot read .*none\.conf: ENOENT/);
  });

  it('has help for every command', () => {
    const r = cli(['--help']);
    for (const c of ['run', 'keygen', 'pubkey', 'show', 'demo']) assert.match(r.stdout, new RegExp(`\\n  ${c}\\s`));
    const run = cli(['run', '--help']).stdout;
    for (const f of ['--config', '--dns', '--mtu', '--tun', '--user', '--wait-handshake', '--no-dns-override', '--log-level']) assert.ok(run.includes(f), f);
  });
});
