import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDirs } from './helpers.js';

// The binary (built dist/) for what fails before any socket is opened; the
// running server is exercised in a lab in tests/server.
const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const srv = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    timeout: 15_000,
  });

describe('wirecagesrv binary', function () {
  this.timeout(20_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('keygen prints a key that `wg pubkey` accepts', () => {
    const r = srv(['keygen']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^[A-Za-z0-9+/]{43}=\n$/);
    execFileSync('wg', ['pubkey'], { input: r.stdout });
  });

  it('keygen --out writes a 0600 file, prints only the public key, and keeps an existing file', () => {
    const dir = tmp.make();
    const out = join(dir, 'keys', 'server.key');
    const r = srv(['keygen', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const key = readFileSync(out, 'utf8');
    assert.equal(r.stdout, `public key: ${execFileSync('wg', ['pubkey'], { input: key, encoding: 'utf8' })}`);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(key.trim().replace(/[+/]/g, '\\$&')));
    const again = srv(['keygen', '--out', out]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists; pass --force/);
    assert.equal(readFileSync(out, 'utf8'), key);
    assert.equal(srv(['keygen', '--out', out, '--force']).status, 0);
    assert.notEqual(readFileSync(out, 'utf8'), key);
    assert.deepEqual(readdirSync(join(dir, 'keys')), ['server.key'], 'no temp file is left');
  });

  describe('up refuses to start', () => {
    let dir: string;
    let keyFile: string;
    let tokenFile: string;
    before(() => {
      dir = tmp.make();
      keyFile = join(dir, 'server.key');
      tokenFile = join(dir, 'token');
      srv(['keygen', '--out', keyFile]);
      writeFileSync(tokenFile, 'a-long-enough-registration-token\n');
    });
    const base = () => [
      'up',
      '--private-key-file',
      keyFile,
      '--auth-token-file',
      tokenFile,
      '--wg-endpoint',
      'vpn.example.test:51820',
      '--state',
      join(dir, 'r.db'),
    ];

    it('without a token', () => {
      const r = srv(['up', '--private-key-file', keyFile, '--wg-endpoint', 'e.test:1', '--state', join(dir, 'r.db')]);
      assert.equal(r.status, 2, 'a usage error');
      assert.match(r.stderr, /a registration token is required/);
    });

    it('with a key on the command line (there is no such flag)', () => {
      const r = srv([...base(), '--private-key', 'x']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /Nonexistent flag: --private-key/);
    });

    it('with a bad WG_PRIVATE_KEY_B64, naming it but not echoing it', () => {
      const r = srv(['up', '--auth-token-file', tokenFile, '--wg-endpoint', 'e.test:1', '--state', join(dir, 'r.db')], {
        WG_PRIVATE_KEY_B64: 'not-a-key-SECRETISH',
      });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /WIRECAGESRV_PRIVATE_KEY_B64 is not a WireGuard key/);
      assert.doesNotMatch(r.stderr, /SECRETISH/);
    });

    it('with both a key file and WG_PRIVATE_KEY_B64', () => {
      const r = srv(base(), { WG_PRIVATE_KEY_B64: readFileSync(keyFile, 'utf8').trim() });
      assert.equal(r.status, 2, 'a usage error');
      assert.match(r.stderr, /not both/);
    });

    it('with a wildcard --wg-listen and no --wg-endpoint', () => {
      const r = srv(['up', '--private-key-file', keyFile, '--auth-token-file', tokenFile, '--state', join(dir, 'r.db')]);
      assert.equal(r.status, 2, 'a usage error');
      assert.match(r.stderr, /--wg-endpoint \(WIRECAGESRV_WG_ENDPOINT\) is required/);
    });

    it('with a malformed listen address', () => {
      const r = srv([...base(), '--api-listen', 'localhost:80']);
      assert.equal(r.status, 2, 'a usage error');
      assert.match(
        r.stderr,
        /--api-listen "localhost:80" must be IP:PORT, such as 0\.0\.0\.0:8443 or \[::\]:8443: "localhost" is not an IPv4 address$/m,
      );
    });

    it('with a --wg-endpoint clients could not parse', () => {
      for (const [endpoint, why] of [
        ['vpn.example.test:99999', /port "99999" is not a number from 1 to 65535/],
        // One bad node in a fleet's list is named.
        ['vpn1.example.test:51820,vpn2.example.test:99999', /port "99999" is not a number from 1 to 65535/],
        ['2001:db8::1:51820', /write an IPv6 address in brackets/],
        ['vpn_example.test:51820', /"vpn_example.test" is not an IPv4 address or host name/],
      ] as const) {
        const r = srv([
          'up',
          '--private-key-file',
          keyFile,
          '--auth-token-file',
          tokenFile,
          '--wg-endpoint',
          endpoint,
          '--state',
          join(dir, 'r.db'),
        ]);
        assert.equal(r.status, 2, `${endpoint}: a usage error`);
        const named = endpoint.split(',').at(-1)!;
        assert.match(
          r.stderr,
          new RegExp(
            `--wg-endpoint "${named.replace(/[.]/g, '\\.')}" must be HOST:PORT \\(IPv6 in brackets\\), or several comma-separated: ${why.source}`,
          ),
          endpoint,
        );
      }
    });

    it('with a corrupt state file, which is left byte-identical', () => {
      const state = join(dir, 'corrupt.db');
      writeFileSync(state, Buffer.alloc(4096, 0x42));
      const before = readFileSync(state);
      const r = srv([
        'up',
        '--private-key-file',
        keyFile,
        '--auth-token-file',
        tokenFile,
        '--wg-endpoint',
        'e.test:1',
        '--state',
        state,
        '--insecure-http',
      ]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /the registry .*corrupt\.db is unreadable or corrupt .*left untouched/s);
      assert.deepEqual(readFileSync(state), before);
    });

    it('with a registry URL carrying a password in argv or the environment, or a bad --registry-url-file (exit 2)', () => {
      const url = 'postgres://wirecagesrv:hunter2-secret@db.example.test/wirecagesrv';
      for (const r of [srv([...base(), '--registry', url]), srv(base(), { WIRECAGESRV_REGISTRY: url })]) {
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /--registry carries a password, which argv and the environment show to others: put the URL in a file/);
        assert.doesNotMatch(r.stderr, /hunter2/, 'the password is not echoed');
      }
      // A unix socket's URL (no host, no password) is taken: it then fails only to connect, naming no password.
      const socketUrl = srv([
        ...base(),
        '--api-listen',
        '127.0.0.1:0',
        '--wg-listen',
        '127.0.0.1:0',
        '--registry',
        `postgres://wirecagesrv@/wirecagesrv?host=${join(dir, 'no-such-socket-dir')}`,
      ]);
      assert.equal(socketUrl.status, 1, socketUrl.stderr);
      assert.doesNotMatch(socketUrl.stderr, /carries a password|not a valid/);
      const notUrl = join(dir, 'registry-url');
      writeFileSync(notUrl, '/var/lib/registry.db\n', { mode: 0o600 });
      const r = srv([...base(), '--registry-url-file', notUrl]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--registry-url-file .* must hold one postgres:\/\/ \(or postgresql:\/\/\) URL/);
    });

    it('with plain HTTP on a non-loopback --api-listen, without --insecure-http (a usage error, exit 2)', () => {
      const r = srv([...base(), '--api-listen', '0.0.0.0:8443']);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(
        r.stderr,
        'wirecagesrv: --api-listen 0.0.0.0:8443 is not a loopback address: serve it over HTTPS (--tls-cert FILE --tls-key FILE), ' +
          'or pass --insecure-http to accept that registration tokens travel in clear (e.g. behind a TLS-terminating proxy on a private network)\n',
      );
    });

    it('with a bad --lease or --trusted-proxy (exit 2)', () => {
      const lease = srv([...base(), '--api-listen', '127.0.0.1:8443', '--lease', '30 days']);
      assert.equal(lease.status, 2);
      assert.match(lease.stderr, /^wirecagesrv: --lease "30 days" must be a duration such as 30d, 12h, 90m or 45s$/m);
      const proxy = srv([...base(), '--api-listen', '127.0.0.1:8443', '--trusted-proxy', '10.0.0.0/8,proxy.lan']);
      assert.equal(proxy.status, 2);
      assert.match(proxy.stderr, /^wirecagesrv: --trusted-proxy: "proxy\.lan" is not an IPv4 or IPv6 address or prefix$/m);
    });
  });
});
