import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoScript } from '../src/demo/checks.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const SRV_BIN = fileURLToPath(new URL('../../../apps/wirecagesrv/bin/run.js', import.meta.url));
const cli = (args: string[], input?: string, env?: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, env: env ?? process.env });
const srv = (args: string[]) => spawnSync(process.execPath, [SRV_BIN, ...args], { encoding: 'utf8' });

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
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('keep.key')),
      ['keep.key'],
    );
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
    assert.equal(
      loose.stderr,
      `wirecage: warning: ${conf} holds a private key but is accessible to others (mode 0644); run: chmod 600 ${conf}\n`,
    );
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
    for (const f of ['--config', '--dns', '--mtu', '--tun', '--user', '--wait-handshake', '--linger', '--no-dns-override', '--log-level'])
      assert.ok(run.includes(f), f);
    const keygen = cli(['keygen', '--help']).stdout;
    for (const f of ['--out=FILE', '--force']) assert.ok(keygen.includes(f), f);
    for (const c of ['check', 'pubkey']) assert.match(cli([c, '--help']).stdout, /Exit status: 0 .*, 1 when/);
  });

  it('check --json prints the public parts as one object, never a secret', () => {
    const priv = cli(['keygen']).stdout.trim();
    const pub = execFileSync('wg', ['pubkey'], { input: priv, encoding: 'utf8' }).trim();
    const peerPub = execFileSync('wg', ['pubkey'], { input: execFileSync('wg', ['genkey']), encoding: 'utf8' }).trim();
    const psk = execFileSync('wg', ['genpsk'], { encoding: 'utf8' }).trim();
    const conf = join(dir, 'json.conf');
    writeFileSync(
      conf,
      `[Interface]\nPrivateKey = ${priv}\nAddress = 10.7.0.2/24, fd07::2\nDNS = 10.7.0.1, corp.example\n\n[Peer]\nPublicKey = ${peerPub}\nPresharedKey = ${psk}\nEndpoint = vpn.example:51820\nAllowedIPs = 0.0.0.0/0\n`,
      { mode: 0o600 },
    );
    const r = cli(['check', conf, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      file: conf,
      publicKey: pub,
      privateKeyFile: null,
      addresses: ['10.7.0.2/24', 'fd07::2/128'],
      dns: ['10.7.0.1'],
      search: ['corp.example'],
      mtu: null,
      listenPort: null,
      peers: [
        {
          publicKey: peerPub,
          presharedKey: '(hidden)',
          presharedKeyFile: null,
          endpoint: 'vpn.example:51820',
          allowedIps: ['0.0.0.0/0'],
          persistentKeepalive: null,
        },
      ],
    });
    assert.ok(!r.stdout.includes(priv) && !r.stdout.includes(psk));
  });

  it('servers --json lists names and URLs, never tokens; show --json is an array', () => {
    const env = { ...process.env, XDG_CONFIG_HOME: join(dir, 'xdg'), XDG_RUNTIME_DIR: join(dir, 'run') };
    assert.deepEqual(JSON.parse(cli(['servers', '--json'], undefined, env).stdout), []);
    assert.equal(cli(['add-server', 'work', 'https://vpn.example:8443', '--token', 'SECRET-TOKEN'], undefined, env).status, 0);
    const r = cli(['servers', '--json'], undefined, env);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [{ name: 'work', url: 'https://vpn.example:8443' }]);
    assert.ok(!r.stdout.includes('SECRET-TOKEN'));
    const show = cli(['show', '--json'], undefined, env);
    assert.equal(show.status, 0, show.stderr);
    assert.deepEqual(JSON.parse(show.stdout), []);
  });

  it('help CMD, -h, version and autocomplete work in both CLIs', () => {
    for (const [run, bin] of [
      [cli, 'wirecage'],
      [srv, 'wirecagesrv'],
    ] as const) {
      const cmd = bin === 'wirecage' ? 'keygen' : 'up';
      const help = run(['help', cmd]);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`USAGE\n  \\$ ${bin} ${cmd}`));
      assert.equal(run([cmd, '-h']).stdout, help.stdout);
      assert.equal(run([cmd, '--help']).stdout, help.stdout);
      for (const v of [run(['version']), run(['--version'])])
        assert.match(v.stdout, new RegExp(`^${bin}/\\d+\\.\\d+\\.\\d+ linux-x64 node-v`));
      for (const shell of ['bash', 'zsh']) {
        const script = run(['autocomplete', 'script', shell]);
        assert.equal(script.status, 0, script.stderr);
        assert.match(script.stdout, new RegExp(`${bin.toUpperCase()}_AC_${shell.toUpperCase()}_SETUP_PATH`));
      }
    }
    // After `--` a -h belongs to the command run in the cage, not to wirecage.
    assert.doesNotMatch(cli(['run', '-c', join(dir, 'none.conf'), '--', 'ls', '-h']).stdout, /USAGE/);
  });

  it('usage errors exit 2 in both CLIs', () => {
    for (const args of [
      ['no-such-command'],
      ['keygen', '--bogus'],
      ['keygen', '--force'],
      ['check'],
      ['servers', 'extra'],
      ['show', 'a', 'b'],
      ['run'],
      ['run', '--bogus', '--', 'true'],
      ['run', '-c', 'x.conf', '--mtu', 'big', '--', 'true'],
      ['run', '-c', 'x.conf', '--linger', '-1', '--', 'true'],
      ['run', '-c', 'x.conf', '--linger', '3601', '--', 'true'],
    ]) {
      const r = cli(args);
      assert.equal(r.status, 2, `wirecage ${args.join(' ')}: ${r.stderr}`);
    }
    for (const args of [['no-such-command'], ['up', '--bogus'], ['up', '--wg-endpoint', 'e.test:1']]) {
      const r = srv(args);
      assert.equal(r.status, 2, `wirecagesrv ${args.join(' ')}: ${r.stderr}`);
    }
  });

  it("demo's caged script exits with the number of its first failed check and marks each", () => {
    const checks = [
      { name: 'first', sh: 'true' },
      { name: "second's", sh: 'echo seen; false' },
      { name: 'third', sh: 'false' },
    ];
    const r = spawnSync('sh', ['-c', demoScript(checks)], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stdout, /\n {2}ok: first\nseen\n {2}FAILED: second's\n {2}FAILED: third\n$/);
    assert.equal(spawnSync('sh', ['-c', demoScript(checks.slice(0, 1))]).status, 0);
  });
});
