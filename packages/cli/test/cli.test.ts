import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
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

  it('keygen --out never replaces an existing key file unless --force is given', () => {
    const out = join(dir, 'keep.key');
    assert.equal(cli(['keygen', '--out', out]).status, 0);
    const first = readFileSync(out, 'utf8');
    const again = cli(['keygen', '--out', out]);
    assert.equal(again.status, 1);
    assert.equal(again.stderr, `wirecage: ${out} already exists; pass --force to replace it (the key it holds is lost)\n`);
    assert.equal(readFileSync(out, 'utf8'), first);
    assert.equal(cli(['keygen', '--out', out, '--force']).status, 0);
    assert.notEqual(readFileSync(out, 'utf8'), first);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('keep.key')), ['keep.key']);
  });

  it('pubkey refuses input that is not a key, exit 1, without echoing it', () => {
    const almost = cli(['keygen']).stdout.slice(0, 40);
    const r = cli(['pubkey'], `${almost}\n`);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'wirecage: the private key on stdin is not a WireGuard key: expected 44 base64 characters encoding 32 bytes\n');
  });

  it('check prints the public parts of a valid config, never its private key', () => {
    const priv = cli(['keygen']).stdout.trim();
    const pub = execFileSync('wg', ['pubkey'], { input: priv, encoding: 'utf8' }).trim();
    const peerPub = execFileSync('wg', ['pubkey'], { input: execFileSync('wg', ['genkey']), encoding: 'utf8' }).trim();
    const psk = execFileSync('wg', ['genpsk'], { encoding: 'utf8' }).trim();
    const conf = join(dir, 'good.conf');
    writeFileSync(
      conf,
      `[Interface]\nPrivateKey = ${priv}\nAddress = 10.7.0.2/24, fd07::2\nDNS = 10.7.0.1, corp.example\nMTU = 1380\n\n` +
        `[Peer]\nPublicKey = ${peerPub}\nPresharedKey = ${psk}\nEndpoint = [2001:db8::7]:51820\nAllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n`,
      { mode: 0o600 },
    );
    const r = cli(['check', conf]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      [
        `interface: ${conf}`,
        `  public key: ${pub}`,
        '  private key: (hidden)',
        '  addresses: 10.7.0.2/24, fd07::2/128',
        '  dns: 10.7.0.1',
        '  search: corp.example',
        '  mtu: 1380',
        '',
        `peer: ${peerPub}`,
        '  preshared key: (hidden)',
        '  endpoint: [2001:db8::7]:51820',
        '  allowed ips: 0.0.0.0/0, ::/0',
        '  persistent keepalive: every 25 seconds',
        '',
      ].join('\n'),
    );
    assert.ok(!r.stdout.includes(priv) && !r.stdout.includes(psk));

    chmodSync(conf, 0o644);
    const loose = cli(['check', conf]);
    assert.equal(loose.status, 0);
    assert.equal(loose.stderr, `wirecage: warning: ${conf} holds a private key but is accessible to others (mode 0644); run: chmod 600 ${conf}\n`);
  });

  it('check exits 1 with file:line: Key for a bad config and for a missing file', () => {
    const conf = join(dir, 'hooks.conf');
    writeFileSync(conf, `[Interface]\nPrivateKey = ${cli(['keygen']).stdout.trim()}\nPostUp = iptables -F\n`, { mode: 0o600 });
    const r = cli(['check', conf]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `wirecage: ${conf}:3: PostUp: wirecage never runs shell hooks; remove PostUp\n`);
    const missing = cli(['check', join(dir, 'none.conf')]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `wirecage: cannot read ${join(dir, 'none.conf')}: ENOENT\n`);
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
    for (const c of ['check', 'run', 'keygen', 'pubkey', 'show', 'demo']) assert.match(r.stdout, new RegExp(`\\n  ${c}\\s`));
    const run = cli(['run', '--help']).stdout;
    for (const f of ['--config', '--dns', '--mtu', '--tun', '--user', '--wait-handshake', '--no-dns-override', '--log-level']) assert.ok(run.includes(f), f);
    const keygen = cli(['keygen', '--help']).stdout;
    for (const f of ['--out=FILE', '--force']) assert.ok(keygen.includes(f), f);
    for (const c of ['check', 'pubkey']) assert.match(cli([c, '--help']).stdout, /Exit status: 0 .*, 1 when/);
  });
});
