import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TomlError, parseToml, stringifyToml } from '../src/servers/toml.js';
import { caFileEntryFor, loadServers, resolveCaFile, saveServers } from '../src/servers/config.js';
import { registrationToConfig } from '../src/servers/register.js';
import { generatePrivateKey, keyToBase64, publicKeyOf, formatCidr } from '@wirecage/wg-engine';

describe('config.toml subset', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'wirecage-toml-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips strings with escapes, integers and quoted table names', () => {
    const doc = {
      version: 1,
      servers: { work: { api_url: 'https://a:1', token: 'q"\\\n\t\u0001é' }, 'with.dots': { api_url: 'http://b', token: '' } },
    };
    const text = stringifyToml(doc);
    assert.match(text, /^\[servers\."with\.dots"\]$/m);
    assert.match(text, /token = "q\\"\\\\\\n\\t\\u0001é"/);
    assert.deepEqual(parseToml(text, 'f'), doc);
  });

  it('reads what hand edits of the original format contain', () => {
    const text =
      '# comment\nversion = 1\n\n[ servers . "x y" ]  # trailing\napi_url = "http://h"\ntoken = "\\u00e9\\U0001F600"\nn = -1_000\n';
    assert.deepEqual(parseToml(text, 'f'), { version: 1, servers: { 'x y': { api_url: 'http://h', token: 'é😀', n: -1000 } } });
  });

  it('refuses everything outside the subset with file:line', () => {
    const cases: [string, number, RegExp][] = [
      ['version = 1\nx = true\n', 2, /only "strings" and integers/],
      ['a = "unterminated\n', 1, /unterminated string/],
      ["a = 'literal'\n", 1, /only "strings"/],
      ['\n\na = 1.5\n', 3, /only "strings"/],
      ['a = "\\q"\n', 1, /invalid escape/],
      ['[[servers]]\n', 1, /arrays of tables/],
      ['[a]\n[a]\n', 2, /defined twice/],
      ['a = 1\na = 2\n', 2, /defined twice/],
      ['a.b = 1\n', 1, /dotted keys/],
      ['a = 1 2\n', 1, /unexpected text/],
      ['[a\n', 1, /expected \]/],
      ['a = """x"""\n', 1, /multi-line/],
      ['a = 99999999999999999999\n', 1, /out of range/],
    ];
    for (const [text, line, re] of cases) {
      assert.throws(
        () => parseToml(text, 'c.toml'),
        (err: Error) => {
          assert.ok(err instanceof TomlError, text);
          assert.equal(err.line, line, text);
          assert.ok(err.message.startsWith(`c.toml:${line}: `), err.message);
          assert.match(err.message, re, text);
          return true;
        },
      );
    }
  });

  it('saveServers writes 0600 atomically and loadServers reads it back; bad entries name their line', () => {
    const file = join(dir, 'cfg', 'config.toml');
    saveServers({ file, servers: new Map([['lab', { apiUrl: 'http://10.1.2.3:8443', token: 't0k' }]]) });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8'), 'version = 1\n\n[servers.lab]\napi_url = "http://10.1.2.3:8443"\ntoken = "t0k"\n');
    assert.deepEqual([...loadServers(file).servers], [['lab', { apiUrl: 'http://10.1.2.3:8443', token: 't0k' }]]);

    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, 'version = 1\n\n[servers.ok]\napi_url = "http://a"\n\n[servers.x]\napi_url = 5\n');
    assert.throws(() => loadServers(bad), { message: `${bad}:6: servers.x: api_url must be a string` });
    writeFileSync(bad, 'version = 2\n');
    assert.throws(() => loadServers(bad), { message: `${bad}:1: version 2 is not supported (only 1)` });
    writeFileSync(bad, 'version = 1\n[servers."a.b"]\napi_url = "http://a"\n');
    assert.throws(() => loadServers(bad), /bad\.toml:2: server name "a\.b" is not valid/);
    writeFileSync(bad, 'version = 1\n[servers.x]\napi_url = "https://a"\nca_file = 3\n');
    assert.throws(() => loadServers(bad), { message: `${bad}:2: servers.x: ca_file must be a file name` });
  });

  it('keeps a ca_file with its server, relative to the directory of config.toml', () => {
    const file = join(dir, 'cfg', 'config.toml');
    saveServers({ file, servers: new Map([['lab', { apiUrl: 'https://10.1.2.3:8443', token: 't0k', caFile: caFileEntryFor('lab') }]]) });
    assert.equal(
      readFileSync(file, 'utf8'),
      'version = 1\n\n[servers.lab]\napi_url = "https://10.1.2.3:8443"\ntoken = "t0k"\nca_file = "ca/lab.pem"\n',
    );
    const entry = loadServers(file).servers.get('lab')!;
    assert.deepEqual(entry, { apiUrl: 'https://10.1.2.3:8443', token: 't0k', caFile: 'ca/lab.pem' });
    assert.equal(resolveCaFile(file, entry.caFile), join(dir, 'cfg', 'ca', 'lab.pem'));
    assert.equal(resolveCaFile(file, '/etc/ssl/lab.pem'), '/etc/ssl/lab.pem', 'one written by hand may be absolute');
  });
});

describe('registration answer to a wg-quick config', () => {
  const key = generatePrivateKey();
  const server = keyToBase64(publicKeyOf(generatePrivateKey()));

  it('uses host routes for the addresses and the defaults of the original tool', () => {
    const cfg = registrationToConfig(
      {
        client_address: '10.200.100.2/24',
        client_address6: 'fd00::2/64',
        server_public_key: server,
        server_endpoint: 'vpn.example.com:51820',
        dns: ['10.200.100.1'],
        mtu: 1380,
        persistent_keepalive: 25,
      },
      key,
      'src',
    );
    assert.deepEqual(cfg.interface.addresses.map(formatCidr), ['10.200.100.2/32', 'fd00::2/128']);
    assert.deepEqual(cfg.interface.dns, { servers: ['10.200.100.1'], search: [] });
    assert.equal(cfg.interface.mtu, 1380);
    assert.equal(cfg.peers.length, 1);
    assert.equal(keyToBase64(cfg.peers[0]!.publicKey), server);
    assert.deepEqual(cfg.peers[0]!.endpoint, { host: 'vpn.example.com', port: 51820 });
    assert.deepEqual(cfg.peers[0]!.allowedIps.map(formatCidr), ['0.0.0.0/0', '::/0']);
    assert.equal(cfg.peers[0]!.persistentKeepalive, 25);
  });

  it('refuses a malformed answer with the field name', () => {
    assert.throws(
      () => registrationToConfig({ client_address: 'x', server_public_key: server, server_endpoint: 'a:1' }, key, 'src'),
      /src: the server's answer has client_address not an IPv4/,
    );
    assert.throws(
      () => registrationToConfig({ client_address: '10.0.0.2', server_public_key: 'nope', server_endpoint: 'a:1' }, key, 'src'),
      /server_public_key not a WireGuard key/,
    );
    assert.throws(
      () => registrationToConfig({ client_address: '10.0.0.2', server_public_key: server, server_endpoint: 'a' }, key, 'src'),
      /server_endpoint not host:port/,
    );
    // The endpoint is held to a wg-quick Endpoint's rule, the address to its family.
    for (const server_endpoint of ['a:0', 'a:65536', '[vpn.example.com]:1', '2001:db8::1:51820', 'bad_name:1']) {
      assert.throws(
        () => registrationToConfig({ client_address: '10.0.0.2', server_public_key: server, server_endpoint }, key, 'src'),
        /server_endpoint not host:port/,
        server_endpoint,
      );
    }
    assert.throws(
      () => registrationToConfig({ client_address: 'fd00::2', server_public_key: server, server_endpoint: 'a:1' }, key, 'src'),
      /client_address not an IPv4 address/,
    );
    assert.throws(
      () =>
        registrationToConfig(
          { client_address: '10.0.0.2', client_address6: '10.0.0.3', server_public_key: server, server_endpoint: 'a:1' },
          key,
          'src',
        ),
      /client_address6 not an IPv6 address/,
    );
    const v6 = registrationToConfig(
      { client_address: '10.0.0.2', server_public_key: server, server_endpoint: '[2001:db8::1]:51820' },
      key,
      'src',
    );
    assert.deepEqual(v6.peers[0]!.endpoint, { host: '2001:db8::1', port: 51820 });
  });
});
