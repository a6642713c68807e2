// `wirecage demo` (`npm run demo`, the README's main job) as a user runs it:
// it builds its own lab (client, server running wirecagesrv, internet), runs
// a cage through the server and tears everything down. The test checks the
// lines that prove each claim, the exit status, the time it takes, and that
// nothing of the lab is left behind.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { run } from '../lib/exec.js';
import { WIRECAGE_BIN } from '../lib/cage.js';

describe('wirecage demo', function () {
  this.timeout(90_000);

  it('resolves and fetches the lab web page by name over IPv4 and IPv6 through wirecagesrv, reaches nothing outside, and cleans up', async () => {
    const started = Date.now();
    const r = await run(process.execPath, [WIRECAGE_BIN, 'demo'], {
      timeoutMs: 60_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    const seconds = (Date.now() - started) / 1000;
    const out = r.stdout;
    assert.equal(r.code, 0, `${out}\n${r.stderr}`);
    assert.ok(seconds < 30, `the demo took ${seconds} s`);

    const id = /namespaces (wcd[0-9a-z]+)-c \(client\)/.exec(out)?.[1];
    assert.ok(id, out);
    assert.match(out, /== wirecagesrv up .*--allow-dest 10\.77\.0\.0\/24 .*--dns-upstream 10\.77\.0\.2/);
    assert.match(
      out,
      /== wirecage add-server demo http:\/\/192\.168\.77\.2:8443: added demo .* in \/tmp\/wirecage-demo-[^/]+\/config\/wirecage\/config\.toml/,
    );
    // The cage's host does reach its own web server: "unreachable" below is the cage's doing.
    assert.match(
      out,
      /== outside the cage, in wcd[0-9a-z]+-c: GET http:\/\/192\.168\.77\.1:8080\/: hello from the lab web server, you came from 192\.168\.77\.1$/m,
    );
    assert.match(out, /^inside the cage: uid 0, WIRECAGE=1 WIRECAGE_TUN=wirecage$/m);
    assert.match(out, /^interfaces:\n {2}lo 127\.0\.0\.1\/8 ::1\/128\n {2}wirecage 10\.200\.100\.\d+\/32 fd7a:de70::[0-9a-f]+\/128/m);
    assert.match(out, /^resolvers \(from the server\):\n {2}10\.200\.100\.1\n {2}fd7a:de70::1$/m);
    assert.match(out, /^web\.lab resolves \(through the server's DNS forwarder\) to:\n( {2}(10\.77\.0\.2|fd7a:77::2)\n){2}/m);
    assert.match(out, /^GET http:\/\/web\.lab:8080\/ over IPv4:\n {2}hello from the lab web server, you came from 10\.77\.0\.1$/m);
    assert.match(out, /^GET http:\/\/web\.lab:8080\/ over IPv6:\n {2}hello from the lab web server, you came from fd7a:77::1$/m);
    assert.match(out, /outside the tunnel:\n {2}unreachable, as it should be$/m);
    assert.deepEqual(out.match(/^ {2}(ok|FAILED): .*/gm), [
      '  ok: the cage has only lo and the tunnel',
      "  ok: web.lab resolves to IPv4 and IPv6 through the server's DNS forwarder",
      "  ok: GET http://web.lab:8080/ over IPv4 through the server's NAT",
      "  ok: GET http://web.lab:8080/ over IPv6 through the server's NAT",
      "  ok: a web server on the cage's own host is unreachable outside the tunnel",
    ]);
    assert.match(out, /== every check passed \(5 of 5\); the run took \d+ ms/);
    assert.match(out, /== tearing the lab down\n$/);
    assert.equal(r.stderr, '', 'nothing on stderr');

    const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${id}-`));
    assert.deepEqual(left, [], 'the lab namespaces are gone');
    const pids = (await run('pgrep', ['-f', 'dist/demo/internet.js'])).stdout.trim();
    assert.equal(pids, '', 'the lab processes are gone');
    const dir = /in (\/tmp\/wirecage-demo-[^/]+)\/config/.exec(out)![1]!;
    assert.ok(!existsSync(dir), `${dir} is gone`);
  });
});
