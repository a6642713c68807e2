// `wirecage run NAME` in a loop against a real `wirecagesrv up` in the lab of
// tests/lib/srv-lab.ts (issue 10's adversarial suite): 200 runs in a row, then
// 50 with the API refused while the WireGuard endpoint stays up. Every run
// fetches a page from the lab's internet through the tunnel, so a run counts
// as a success only if the cage really reached it. The server must see one
// registration for all 250: registering each time would meet its limit
// (burst 10) at the 11th run.
//
// The API and the WireGuard endpoint are one process, so "the API stopped"
// is an nftables rule in the server's namespace refusing its TCP port (the
// lab's, never the host's). The NAT mode does not matter here (the lease is
// the API's business): the default userspace NAT carries the fetches.
//
// Bounds: a run takes about 0.5 s here; each loop may take 3 s a run, six
// times that, before it fails, so a machine twice as slow passes with room.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixture } from '../lib/cage.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { INET4, SRV_BIN, addServer, runCaged, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { writeSecretFile } from '../lib/wg.js';

const HTTP_SERVER = fileURLToPath(new URL('../cage/fixtures/http-server.mjs', import.meta.url));
const ADMIN = 'lab-admin-runloop-0123456789';
const PAGE = 'through-the-tunnel';
const RUNS = 200;
const RUNS_API_DOWN = 50;
/** The most seconds one run may take on average before a loop fails (about 0.5 s here). */
const SECONDS_PER_RUN = 3;

interface PeerEntry {
  client_public_key: string;
  client_address: string;
  client_address6: string;
  lease_expires: string;
}

describe('adversarial: wirecage run NAME in a loop, and with the API down', function () {
  this.timeout(60_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let adminFile: string;
  let leaseFile: string;
  let first: PeerEntry;

  const peersList = async (): Promise<PeerEntry[]> => {
    const r = await l.cli.run(
      process.execPath,
      [SRV_BIN, 'peers', 'list', '--json', '--admin-token-file', adminFile, '--api', `http://${l.srvAddr}:8443`],
      {
        env: { PATH: process.env.PATH, HOME: l.dir },
        timeoutMs: 30_000,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as PeerEntry[];
  };
  const registrations = () => server.output().match(/registered peer /g)?.length ?? 0;
  const nft = (script: string) => l.srv.runOrThrow('nft', ['-f', '-'], { input: script });

  /** `n` runs in a row, each fetching the page through its cage; fails at the first run that does not. */
  async function loop(n: number, what: string): Promise<{ ok: number; seconds: number }> {
    const started = Date.now();
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const r = await runCaged(l, ['curl', '-sS', '--max-time', '10', `http://${INET4}:8080/`]);
      assert.equal(r.code, 0, `${what}: run ${i + 1} of ${n} failed after ${ok} successes: ${r.stderr}\n${server.describe()}`);
      assert.equal(r.stdout, `${PAGE}\n`, `${what}: run ${i + 1}`);
      assert.equal(r.stderr, '', `${what}: run ${i + 1} warned`);
      ok++;
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`      ${what}: ${ok} of ${n} runs succeeded in ${seconds.toFixed(1)} s (${(ok / seconds).toFixed(2)} runs/s)`);
    return { ok, seconds };
  }

  before(async () => {
    l = await srvLab(lab, { built: ['apps/wirecagesrv/dist/commands/peers/list.js', 'packages/cli/dist/servers/lease-state.js'] });
    adminFile = await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    await startFixture(l.inet, HTTP_SERVER, [INET4, '8080', PAGE]);
    server = await startWirecagesrv(l, ['--admin-token-file', adminFile]);
    await addServer(l, 'lab');
    leaseFile = join(l.dir, 'config', 'wirecage', 'keys', 'lab.lease.json');
  });

  it(`${RUNS} runs in a row all succeed, and the server saw one registration`, async function () {
    this.timeout(RUNS * SECONDS_PER_RUN * 1000);
    const { ok } = await loop(RUNS, `${RUNS} runs in a row`);
    assert.equal(ok, RUNS);
    assert.equal(registrations(), 1, `registrations logged by the server:\n${server.describe()}`);
    const peers = await peersList();
    assert.equal(peers.length, 1, JSON.stringify(peers));
    first = peers[0]!;
    const stored = JSON.parse(await readFile(leaseFile, 'utf8')) as { client_public_key: string };
    assert.equal(first.client_public_key, stored.client_public_key);
  });

  it(`${RUNS_API_DOWN} runs with the API refused all succeed, the endpoint alone serving them`, async function () {
    this.timeout(RUNS_API_DOWN * SECONDS_PER_RUN * 1000 + 30_000);
    assert.ok(first, 'needs the registration of the loop before');
    await nft(
      'table inet lab_api_down {\n chain input {\n  type filter hook input priority -10;\n  tcp dport 8443 counter name refused reject with tcp reset\n }\n counter refused {}\n}\n',
    );
    try {
      const curl = await l.cli.run('curl', ['-s', '-o', '/dev/null', '--max-time', '2', `http://${l.srvAddr}:8443/healthz`]);
      assert.equal(curl.code, 7, 'the API must refuse connections (curl: 7, could not connect)');
      const { ok } = await loop(RUNS_API_DOWN, `${RUNS_API_DOWN} runs with the API down`);
      assert.equal(ok, RUNS_API_DOWN);
      server.assertRunning();
      // Within the first half of the lease a run does not even try the API: only the curl above knocked.
      const counter = (await l.srv.runOrThrow('nft', ['list', 'counter', 'inet', 'lab_api_down', 'refused'])).stdout;
      assert.match(counter, /packets 1 bytes/, counter);
    } finally {
      await nft('delete table inet lab_api_down\n');
    }
    assert.equal(registrations(), 1, server.describe());
    const peers = await peersList();
    assert.deepEqual(
      peers.map((p) => [p.client_public_key, p.client_address, p.client_address6]),
      [[first.client_public_key, first.client_address, first.client_address6]],
    );
  });
});
