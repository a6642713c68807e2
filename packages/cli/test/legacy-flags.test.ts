// The earlier wirecage's flags (--wg-public-key, --wg-private-key-file,
// --wg-endpoint, --wg-address, --wg-psk-file): parsed into the config a
// wg-quick file gives, written as one by `config from-flags` (the key by
// reference: PrivateKeyFile), and reaching `run` without the word run.
// Real key files in a temp dir; no namespace is made here (tests/cage/legacy-flags.test.ts runs cages).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatCidr, formatIp, generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import { topLevelArgv } from '../src/cage/argv.js';
import { FlagError, parseTunnelFlags, tunnelConfig, tunnelConfigText, type TunnelFlagValues } from '../src/config/from-flags.js';
import { loadWgQuick } from '../src/config/load.js';
import { ConfigError, parseWgQuick, type WgQuickConfig } from '../src/config/wg-quick.js';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const env = { ...process.env };
delete env.WIRECAGE_CONFIG;
const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });

const priv = keyToBase64(generatePrivateKey());
const serverPub = keyToBase64(publicKeyOf(generatePrivateKey()));
const psk = keyToBase64(generatePrivateKey());

/** The config without what names its origin (file name, line numbers). */
function comparable(cfg: WgQuickConfig): unknown {
  return { ...cfg, file: null, peers: cfg.peers.map((p) => ({ ...p, line: null })) };
}

describe("the earlier wirecage's flags", function () {
  this.timeout(20_000);
  let dir: string;
  let keyFile: string;
  let pskFile: string;
  let flags: TunnelFlagValues;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-legacy-'));
    keyFile = join(dir, 'client.key');
    pskFile = join(dir, 'client.psk');
    writeFileSync(keyFile, `${priv}\n`, { mode: 0o600 });
    writeFileSync(pskFile, `${psk}\n`, { mode: 0o400 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    flags = {
      'wg-public-key': serverPub,
      'wg-private-key-file': keyFile,
      'wg-endpoint': 'vpn.example.org:51820',
      'wg-address': ['10.64.0.2'],
    };
  });

  const expectFlagError = (f: TunnelFlagValues, message: string) =>
    assert.throws(
      () => tunnelConfig(parseTunnelFlags(f)),
      (err: Error) => {
        assert.ok(err instanceof FlagError, `a FlagError, not ${err.name}: ${err.message}`);
        assert.equal(err.message, message);
        assert.ok(!err.message.includes(priv), 'the private key never appears in an error');
        return true;
      },
    );

  describe('parsing', () => {
    it('builds one peer routing 0.0.0.0/0, DNS 1.1.1.1 by default, the key read from its file', () => {
      const t = parseTunnelFlags(flags);
      assert.equal(t.defaultDns, '1.1.1.1');
      const cfg = tunnelConfig(t);
      assert.equal(keyToBase64(cfg.interface.privateKey), priv);
      assert.equal(cfg.interface.privateKeyFile, keyFile);
      assert.deepEqual(
        cfg.interface.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
        ['10.64.0.2/32'],
      );
      assert.deepEqual(cfg.interface.dns, { servers: ['1.1.1.1'], search: [] });
      assert.equal(cfg.peers.length, 1);
      const [peer] = cfg.peers;
      assert.equal(keyToBase64(peer!.publicKey), serverPub);
      assert.deepEqual(peer!.endpoint, { host: 'vpn.example.org', port: 51820 });
      assert.deepEqual(peer!.allowedIps.map(formatCidr), ['0.0.0.0/0']);
      assert.equal(peer!.presharedKey, undefined);
    });

    it('adds ::/0 with an IPv6 address, keeps /len and the host part, reads the preshared key file', () => {
      const cfg = tunnelConfig(
        parseTunnelFlags({
          ...flags,
          'wg-address': ['10.64.0.2/24', 'fd64::2/64'],
          'wg-endpoint': '[2001:db8::1]:4500',
          'wg-psk-file': pskFile,
          dns: ['10.64.0.1', 'fd64::1'],
        }),
      );
      assert.deepEqual(
        cfg.interface.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
        ['10.64.0.2/24', 'fd64::2/64'],
      );
      assert.deepEqual(cfg.peers[0]!.allowedIps.map(formatCidr), ['0.0.0.0/0', '::/0']);
      assert.deepEqual(cfg.peers[0]!.endpoint, { host: '2001:db8::1', port: 4500 });
      assert.equal(keyToBase64(cfg.peers[0]!.presharedKey!), psk);
      assert.equal(cfg.peers[0]!.presharedKeyFile, pskFile);
      assert.deepEqual(cfg.interface.dns.servers, ['10.64.0.1', 'fd64::1']);
    });

    it('chooses DNS: --dns over the default, the IPv6 default for an IPv6-only tunnel, none with --no-dns-override', () => {
      assert.equal(parseTunnelFlags({ ...flags, dns: ['9.9.9.9'] }).defaultDns, null);
      const v6 = parseTunnelFlags({ ...flags, 'wg-address': ['fd64::2'] });
      assert.deepEqual([v6.defaultDns, v6.dns], ['2606:4700:4700::1111', ['2606:4700:4700::1111']]);
      const host = parseTunnelFlags({ ...flags, 'dns-override': false });
      assert.deepEqual([host.defaultDns, host.dns], [null, []]);
    });
  });

  describe('errors name the flag', () => {
    it('for missing and malformed values, without quoting a key', () => {
      expectFlagError(
        { ...flags, 'wg-endpoint': undefined },
        '--wg-endpoint: missing; a tunnel from flags needs --wg-public-key, --wg-private-key-file, --wg-endpoint, --wg-address',
      );
      expectFlagError(
        { ...flags, 'wg-public-key': priv.slice(0, 40) },
        '--wg-public-key: not a WireGuard key (44 base64 characters, as `wg pubkey` prints)',
      );
      expectFlagError(
        { ...flags, 'wg-endpoint': 'vpn.example.org' },
        '--wg-endpoint vpn.example.org: not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
      );
      expectFlagError(
        { ...flags, 'wg-endpoint': priv },
        '--wg-endpoint <key hidden>: not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
      );
      expectFlagError(
        { ...flags, 'wg-address': ['10.64.0.300'] },
        '--wg-address 10.64.0.300: not an IPv4 or IPv6 address with an optional /len',
      );
      expectFlagError(
        { ...flags, 'wg-address': ['10.64.0.2,fd64::2'] },
        '--wg-address 10.64.0.2,fd64::2: one address per flag; repeat --wg-address for more',
      );
      expectFlagError({ ...flags, dns: ['dns.example'] }, '--dns dns.example: not an IP address');
    });

    it('for key files: missing, not a key, and readable by others (0644 refused, for the preshared key too)', () => {
      expectFlagError(
        { ...flags, 'wg-private-key-file': join(dir, 'none.key') },
        `--wg-private-key-file: cannot read ${join(dir, 'none.key')}: ENOENT`,
      );
      const notKey = join(dir, 'not.key');
      writeFileSync(notKey, 'hello\n', { mode: 0o600 });
      expectFlagError(
        { ...flags, 'wg-private-key-file': notKey },
        `--wg-private-key-file: ${notKey} does not hold a WireGuard private key (44 base64 characters, as \`wirecage keygen --out\` or \`wg genkey\` writes)`,
      );
      const loose = join(dir, 'loose.key');
      writeFileSync(loose, `${priv}\n`);
      chmodSync(loose, 0o644);
      expectFlagError(
        { ...flags, 'wg-private-key-file': loose },
        `--wg-private-key-file: ${loose} holds a private key that others may read or change (mode 0644); a key file must be 0600 or stricter: chmod 600 ${loose}`,
      );
      chmodSync(loose, 0o620);
      expectFlagError(
        { ...flags, 'wg-psk-file': loose },
        `--wg-psk-file: ${loose} holds a preshared key that others may read or change (mode 0620); a key file must be 0600 or stricter: chmod 600 ${loose}`,
      );
    });
  });

  describe('as a wg-quick file', () => {
    it('parses back to the same config, the key by reference and never copied', () => {
      for (const f of [
        flags,
        { ...flags, 'wg-address': ['10.64.0.2/24', 'fd64::2/64'], 'wg-psk-file': pskFile, dns: ['10.64.0.1'] },
        { ...flags, 'dns-override': false },
      ]) {
        const t = parseTunnelFlags(f);
        const text = tunnelConfigText(t);
        assert.ok(!text.includes(priv) && !text.includes(psk), 'no key is copied into the file');
        assert.match(text, new RegExp(`^PrivateKeyFile = ${keyFile}$`, 'm'));
        assert.match(text, new RegExp(`^# PrivateKey: read from ${keyFile}$`, 'm'));
        const conf = join(dir, 'from-flags.conf');
        writeFileSync(conf, text, { mode: 0o644 });
        const loaded = loadWgQuick(conf);
        assert.deepEqual(comparable(loaded.config), comparable(tunnelConfig(t)));
        assert.equal(loaded.warning, null, 'a file without a key may be readable by others');
      }
    });

    it('refuses a key file path the parser would read differently', () => {
      assert.throws(() => tunnelConfigText(parseTunnelFlags({ ...flags, 'wg-private-key-file': join(dir, 'a#b.key') })), {
        name: 'FlagError',
        message: `--wg-private-key-file: "${join(dir, 'a#b.key')}" cannot be written to a config file (it has a #, a line break or spaces at an end); rename the file`,
      });
    });
  });

  describe('PrivateKeyFile and PresharedKeyFile in wg-quick files (a wirecage extension)', () => {
    const peer = `[Peer]\nPublicKey = ${serverPub}\nEndpoint = vpn.example.org:51820\nAllowedIPs = 0.0.0.0/0\n`;
    const expectConfigError = (text: string, message: string) =>
      assert.throws(
        () => parseWgQuick(text, join(dir, 'work.conf')),
        (err: Error) => {
          assert.ok(err instanceof ConfigError, `a ConfigError, not ${err.name}: ${err.message}`);
          assert.equal(err.message, message);
          return true;
        },
      );

    it("reads the keys from files, a relative path from the config file's directory", () => {
      const cfg = parseWgQuick(
        `[Interface]\nPrivateKeyFile = client.key\nAddress = 10.64.0.2\n${peer}PresharedKeyFile = ${pskFile}\n`,
        join(dir, 'work.conf'),
      );
      assert.equal(keyToBase64(cfg.interface.privateKey), priv);
      assert.equal(cfg.interface.privateKeyFile, keyFile);
      assert.equal(keyToBase64(cfg.peers[0]!.presharedKey!), psk);
      assert.equal(cfg.peers[0]!.presharedKeyFile, pskFile);
    });

    it('refuses a key file others may read, and a key given twice, by file:line: Key', () => {
      const loose = join(dir, 'loose-conf.key');
      writeFileSync(loose, `${priv}\n`);
      chmodSync(loose, 0o644);
      const conf = join(dir, 'work.conf');
      expectConfigError(
        `[Interface]\nPrivateKeyFile = ${loose}\n${peer}`,
        `${conf}:2: PrivateKeyFile: ${loose} holds a private key that others may read or change (mode 0644); a key file must be 0600 or stricter: chmod 600 ${loose}`,
      );
      expectConfigError(
        `[Interface]\nPrivateKey = ${priv}\nPrivateKeyFile = ${keyFile}\n${peer}`,
        `${conf}:3: PrivateKeyFile: the private key is already given on line 2; keep PrivateKey or PrivateKeyFile, not both`,
      );
      expectConfigError(
        `[Interface]\nPrivateKeyFile = ${keyFile}\n${peer}PresharedKey = ${psk}\nPresharedKeyFile = ${pskFile}\n`,
        `${conf}:8: PresharedKeyFile: the preshared key is already given in this [Peer]; keep PresharedKey or PresharedKeyFile, not both`,
      );
      expectConfigError(
        `[Interface]\nPrivateKeyFile = none.key\n${peer}`,
        `${conf}:2: PrivateKeyFile: cannot read ${join(dir, 'none.key')}: ENOENT`,
      );
    });

    it('`check` shows where the key comes from, never the key', () => {
      const conf = join(dir, 'check.conf');
      writeFileSync(conf, `[Interface]\nPrivateKeyFile = ${keyFile}\nAddress = 10.64.0.2\n${peer}`, { mode: 0o644 });
      const r = cli(['check', conf]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^  private key: \\(hidden, read from ${keyFile}\\)$`, 'm'));
      assert.ok(!r.stdout.includes(priv));
    });
  });

  describe('the command line', () => {
    it('sends a top-level command line with --wg-* flags to run, and leaves the rest alone', () => {
      assert.deepEqual(topLevelArgv(['--wg-public-key', 'K', '--', 'ping']), ['run', '--wg-public-key', 'K', '--', 'ping']);
      assert.deepEqual(topLevelArgv(['--log-level', 'debug', '--wg-endpoint=h:1', 'ping']), [
        'run',
        '--log-level',
        'debug',
        '--wg-endpoint=h:1',
        'ping',
      ]);
      for (const argv of [
        ['run', '--wg-public-key', 'K'],
        ['--help'],
        ['--version'],
        [],
        ['check', 'x'],
        ['--', '--wg-public-key'],
        ['-c', 'x.conf', '--', 'echo', '--wg-x'],
      ]) {
        assert.deepEqual(topLevelArgv(argv), argv);
      }
    });

    it('`wirecage --wg-...` and `wirecage run --wg-...` reach run: a flag error names the flag, exit 125', () => {
      const loose = join(dir, 'cli-loose.key');
      writeFileSync(loose, `${priv}\n`);
      chmodSync(loose, 0o644);
      const args = [
        '--wg-public-key',
        serverPub,
        '--wg-private-key-file',
        loose,
        '--wg-endpoint',
        '192.0.2.1:51820',
        '--wg-address',
        '10.64.0.2',
        '--',
        'true',
      ];
      for (const argv of [args, ['run', ...args]]) {
        const r = cli(argv);
        assert.equal(r.status, 125, r.stderr);
        assert.equal(
          r.stderr,
          `wirecage: --wg-private-key-file: ${loose} holds a private key that others may read or change (mode 0644); a key file must be 0600 or stricter: chmod 600 ${loose}\n`,
        );
      }
      const both = cli(['run', '-c', join(dir, 'x.conf'), ...args]);
      assert.equal(both.status, 125);
      assert.equal(
        both.stderr,
        'wirecage: the --wg-* flags and --config (or WIRECAGE_CONFIG) both describe the tunnel: give one of them\n',
      );
      const named = cli(['run', 'work', ...args]);
      assert.equal(named.status, 125);
      assert.equal(
        named.stderr,
        'wirecage: the --wg-* flags and "work" (a server name or config file) both describe the tunnel: give one of them\n',
      );
    });

    it('keeps --help and --version at the top level', () => {
      assert.match(cli(['--help']).stdout, /\n {2}run\s/);
      assert.match(cli(['--version']).stdout, /^wirecage\/\d/);
      assert.match(cli(['run', '--help']).stdout, /--wg-private-key-file=FILE/);
    });

    it('`config from-flags` prints the file, or exits 1 naming the flag', () => {
      const r = cli([
        'config',
        'from-flags',
        '--wg-public-key',
        serverPub,
        '--wg-private-key-file',
        keyFile,
        '--wg-endpoint',
        'vpn.example.org:51820',
        '--wg-address',
        '10.64.0.2',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, tunnelConfigText(parseTunnelFlags(flags)));
      const bad = cli([
        'config',
        'from-flags',
        '--wg-public-key',
        serverPub,
        '--wg-private-key-file',
        keyFile,
        '--wg-endpoint',
        'vpn.example.org',
        '--wg-address',
        '10.64.0.2',
      ]);
      assert.equal(bad.status, 1);
      assert.equal(bad.stdout, '');
      assert.equal(bad.stderr, 'wirecage: --wg-endpoint vpn.example.org: not host:port, IPv4:port or [IPv6]:port with a port in 1-65535\n');
    });
  });
});
