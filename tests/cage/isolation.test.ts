// What a command inside the cage can see and reach: only lo and the tunnel,
// only the tunnel's routes, nothing of the namespace wirecage was started in
// (its addresses, its resolver), not the config file, no stray environment
// variables and no inherited file descriptors.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startFixture, wirecage } from '../lib/cage.js';
import { cageSuite } from '../lib/cage-suite.js';
import type { LabProcess } from '../lib/process.js';

const DNS_SERVER = fileURLToPath(new URL('./fixtures/dns-server.mjs', import.meta.url));

/** `env -0` output as a map (values may hold newlines). */
function parseEnv0(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of text.split('\0')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    out.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return out;
}

describe('wirecage run: isolation', function () {
  this.timeout(60_000);
  // IPv4 only: no IPv6 Address, so the cage must have no IPv6 route at all.
  const t = cageSuite('iso');
  /** A resolver in the client namespace, on its veth address: any query reaching it leaked. */
  let hostDns: LabProcess;
  before(async () => {
    hostDns = await startFixture(t.c.client, DNS_SERVER, [t.srv.clientOuter, `web.lab=${t.srv.v4}`]);
  });

  const cage = (...cmd: string[]) => wirecage(t.c.client, ['-c', t.conf, '--', ...cmd]);

  it('has exactly two links: lo and the tunnel', async () => {
    const r = await cage('ip', '-o', 'link');
    assert.equal(r.code, 0, r.stderr);
    const names = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(': ')[1]);
    assert.deepEqual(names, ['lo', 'wirecage']);
  });

  it("lists only lo and the tunnel in /sys too (its own sysfs, not the host's)", async () => {
    const r = await cage('ls', '/sys/class/net');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['lo', 'wirecage']);
  });

  it('has only tunnel routes', async () => {
    const r = await cage('ip', '-4', 'route');
    assert.equal(r.code, 0, r.stderr);
    const routes = r.stdout.trim().split('\n');
    assert.ok(
      routes.some((l) => l.startsWith(`${t.srv.net4} dev wirecage`)),
      r.stdout,
    );
    for (const l of routes) assert.match(l, /\bdev wirecage\b/, `a route not on the tunnel: ${l}`);
  });

  it('has no IPv6 route when the config has no IPv6 Address', async () => {
    const r = await cage('ip', '-6', 'route');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  it('cannot reach the addresses of the namespace it was started in', async () => {
    const r = await cage('ping', '-n', '-c1', '-W1', t.srv.clientOuter);
    assert.notEqual(r.code, 0, `ping ${t.srv.clientOuter} from the cage succeeded: ${r.stdout}`);
    // The server's veth address is outside AllowedIPs too: reachable only as the tunnel's endpoint.
    const s = await cage('ping', '-n', '-c1', '-W1', t.srv.outer);
    assert.notEqual(s.code, 0, `ping ${t.srv.outer} from the cage succeeded: ${s.stdout}`);
  });

  it("does not let a DNS query to the host side's resolver out of the cage", async () => {
    // Sanity check: the resolver answers from where wirecage runs.
    const outside = await t.c.client.run('dig', ['+short', '+time=1', '+tries=1', `@${t.srv.clientOuter}`, 'web.lab']);
    assert.equal(outside.stdout.trim(), t.srv.v4, outside.stdout + outside.stderr);
    const before = hostDns.output();

    const r = await cage('timeout', '5', 'dig', '+time=1', '+tries=1', `@${t.srv.clientOuter}`, 'web.lab');
    assert.notEqual(r.code, 0, `dig from the cage got an answer: ${r.stdout}`);
    assert.equal(hostDns.output(), before, "the host side's resolver received a query from the cage");
    // And the cage's own resolver is the tunnel's.
    const inside = await cage('cat', '/etc/resolv.conf');
    assert.match(inside.stdout, new RegExp(`^nameserver ${t.srv.v4.replace(/\./g, '\\.')}$`, 'm'));
    assert.doesNotMatch(inside.stdout, new RegExp(`nameserver (?!${t.srv.v4.replace(/\./g, '\\.')}$)`, 'm'));
  });

  it('cannot read the config file', async () => {
    const r = await cage('cat', t.conf);
    assert.equal(r.stdout, '', 'the config file is readable in the cage');
    assert.ok(!r.stdout.includes(t.key.privateKey));
  });

  it('adds WIRECAGE=1 and WIRECAGE_TUN to the environment, and nothing else', async () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root', LANG: 'C.UTF-8', WCT_MULTILINE: 'one\ntwo' };
    const outside = parseEnv0((await t.c.client.runOrThrow('env', ['-0'], { env })).stdout);
    const r = await wirecage(t.c.client, ['-c', t.conf, '--', 'env', '-0'], { env });
    assert.equal(r.code, 0, r.stderr);
    const inside = parseEnv0(r.stdout);
    const expected = new Map([...outside, ['WIRECAGE', '1'], ['WIRECAGE_TUN', 'wirecage']]);
    assert.deepEqual(Object.fromEntries([...inside].sort()), Object.fromEntries([...expected].sort()));
  });

  it('passes no file descriptor above 2 to the command', async () => {
    // ls itself holds one more: the directory it lists (fd 3).
    const r = await cage('ls', '/proc/self/fd');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3']);
    const link = await cage('readlink', '/proc/self/fd/3');
    assert.equal(link.stdout, '', 'fd 3 is open in a command that opens nothing');
  });
});
