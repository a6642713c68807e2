// The earlier wirecage's command line against wireguard-go: `wirecage
// --wg-public-key ... -- CMD`, with and without the word run, IPv4 and IPv6,
// and the file `wirecage config from-flags` writes, used with -c.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, nsRun } from '../lib/netns.js';
import {
  WIRECAGE_BIN,
  cageKey,
  cageLab,
  registerClient,
  startFixture,
  wirecage,
  type CageLab,
  type CageServer,
  type CageKey,
} from '../lib/cage.js';

const DNS_SERVER = fileURLToPath(new URL('./fixtures/dns-server.mjs', import.meta.url));

/** The earlier wirecage's tunnel flags for `key` talking to `srv`. */
function tunnelFlags(srv: CageServer, key: CageKey, addresses: string[]): string[] {
  return [
    '--wg-public-key',
    srv.wg.publicKey,
    '--wg-private-key-file',
    key.privateKeyFile,
    '--wg-endpoint',
    srv.endpoint,
    ...addresses.flatMap((a) => ['--wg-address', a]),
  ];
}

describe("wirecage run: the earlier wirecage's flags", function () {
  this.timeout(60_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  /** Key files outside /tmp (private in the cage anyway), to see that the cage hides them. */
  let keyDir: string;
  after(() => lab.teardown());

  before(async () => {
    c = await cageLab(lab);
    srv = c.servers[0]!;
    keyDir = await mkdtemp(join(homedir(), '.wirecage-legacy-test-'));
    lab.onTeardown(() => rm(keyDir, { recursive: true, force: true }));
    // Next to the keys and readable in the cage: the keys' absence is then the hiding, not the directory's.
    await writeFile(join(keyDir, 'witness'), 'seen\n');
  });

  it('`wirecage --wg-... -- ping` works without the word run, DNS 1.1.1.1 through the tunnel, with a notice and a hint', async () => {
    const key = await cageKey(keyDir, 'bare');
    const me = srv.clientAddress(2);
    await registerClient(srv, key, [me.v4]);
    const script = `ping -n -c1 -W2 ${srv.v4} && cat /etc/resolv.conf && ip -6 route && cat ${keyDir}/witness && echo "key bytes: $(cat ${key.privateKeyFile} 2>/dev/null | wc -c)"`;
    const args = [...tunnelFlags(srv, key, [me.v4]), '--', 'sh', '-c', script];
    const r = await nsRun(c.client, process.execPath, [WIRECAGE_BIN, ...args], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`from ${srv.v4}: icmp_seq=1`));
    assert.match(r.stdout, /^nameserver 1\.1\.1\.1$/m);
    assert.doesNotMatch(r.stdout, /default/, 'no IPv6 route without an IPv6 address');
    assert.match(r.stdout, /^seen\nkey bytes: 0$/m, 'the key file is hidden in the cage');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.deepEqual(
      lines.slice(0, 2).map((l) => l.split(':').slice(0, 2).join(':')),
      ['wirecage: notice', 'wirecage: hint'],
    );
    assert.match(
      lines[0]!,
      /no --dns given: the cage resolves names with 1\.1\.1\.1 through the tunnel, as the earlier wirecage did; choose with --dns IP$/,
    );
    assert.ok(
      lines[1]!.includes(`wirecage config from-flags --wg-public-key ${srv.wg.publicKey} --wg-private-key-file ${key.privateKeyFile}`),
      lines[1],
    );
    assert.ok(!r.stderr.includes(key.privateKey), 'the private key is never printed');

    const quiet = await nsRun(
      c.client,
      process.execPath,
      [WIRECAGE_BIN, '--log-level', 'error', ...tunnelFlags(srv, key, [me.v4]), '--', 'true'],
      { timeoutMs: 30_000 },
    );
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
  });

  it('`wirecage run --wg-...` carries IPv6 with an IPv6 --wg-address, and --dns reaches a server through the tunnel', async () => {
    const key = await cageKey(c.dir, 'v6');
    const me = srv.clientAddress(3);
    await registerClient(srv, key, [me.v4, me.v6]);
    const dns = await startFixture(srv.ns, DNS_SERVER, [srv.v6, `web.lab=${srv.v4}`]);
    const script = `ping -6 -n -c1 -W2 ${srv.v6} && getent ahostsv4 web.lab`;
    const r = await wirecage(c.client, [
      ...tunnelFlags(srv, key, [`${me.v4}/32`, `${me.v6}/128`]),
      '--dns',
      srv.v6,
      '--',
      'sh',
      '-c',
      script,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`from ${srv.v6}: icmp_seq=1`));
    assert.match(r.stdout, new RegExp(`^${srv.v4.replace(/\./g, '\\.')}\\s+STREAM web\\.lab$`, 'm'));
    assert.match(dns.output(), /^query web\.lab 1$/m);
    assert.doesNotMatch(r.stderr, /notice/, 'no DNS notice when --dns is given');
  });

  it('`config from-flags` writes a file that `run -c` uses for the same tunnel, the key by reference', async () => {
    const key = await cageKey(keyDir, 'file');
    const me = srv.clientAddress(4);
    await registerClient(srv, key, [me.v4, me.v6]);
    const made = await nsRun(c.client, process.execPath, [WIRECAGE_BIN, 'config', 'from-flags', ...tunnelFlags(srv, key, [me.v4, me.v6])]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, new RegExp(`^PrivateKeyFile = ${key.privateKeyFile}$`, 'm'));
    assert.ok(!made.stdout.includes(key.privateKey), 'the private key is not copied into the file');
    // As `> work.conf` makes it: the file holds no key, so its mode draws no warning.
    const conf = join(c.dir, 'from-flags.conf');
    await writeFile(conf, made.stdout, { mode: 0o644 });
    const script = `ping -n -c1 -W2 ${srv.v4} && ping -6 -n -c1 -W2 ${srv.v6} && cat ${keyDir}/witness && echo "key bytes: $(cat ${key.privateKeyFile} 2>/dev/null | wc -c)"`;
    const r = await wirecage(c.client, ['-c', conf, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^seen\nkey bytes: 0$/m, 'the PrivateKeyFile is hidden in the cage');
    assert.match(r.stdout, new RegExp(`from ${srv.v4}: icmp_seq=1`));
    assert.match(r.stdout, new RegExp(`from ${srv.v6}: icmp_seq=1`));
    assert.equal(r.stderr, '');
  });
});
