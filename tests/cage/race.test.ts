// Races: the cage's interface must be there on every run (the earlier Go
// tool lost it at random when a namespace was entered on the wrong thread),
// and several cages with the same tunnel name must coexist.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab } from '../lib/netns.js';
import { cageKey, cageLab, registerClient, serverPeer, wirecage, writeWgQuick, type CageLab, type CageServer } from '../lib/cage.js';

/**
 * Runs for a fixed time rather than a fixed count within a limit: a slower machine does fewer runs
 * instead of failing. At least MIN_SEQUENTIAL_RUNS must fit: 105 did here (572 ms a run, other suites
 * running alongside), about 130 alone; a machine 2x slower does 50 to 65, so the floor leaves it room
 * for a loaded minute too.
 */
const SEQUENTIAL_FOR_MS = 60_000;
const MIN_SEQUENTIAL_RUNS = 30;
const CONCURRENT_CAGES = 4;

describe('wirecage run: races', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let c: CageLab;
  let srv: CageServer;
  after(() => lab.teardown());

  before(async () => {
    c = await cageLab(lab);
    srv = c.servers[0]!;
  });

  it(`shows the tunnel interface on every run, as many as fit in ${SEQUENTIAL_FOR_MS / 1000} s (at least ${MIN_SEQUENTIAL_RUNS})`, async function () {
    // The last run may start just before the time is up.
    this.timeout(SEQUENTIAL_FOR_MS + 60_000);
    const key = await cageKey(c.dir, 'seq');
    const me = srv.clientAddress(2);
    await registerClient(srv, key, [me.v4]);
    const conf = await writeWgQuick(c.dir, 'seq.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [
      serverPeer(srv),
    ]);
    const started = Date.now();
    let runs = 0;
    while (Date.now() - started < SEQUENTIAL_FOR_MS) {
      runs++;
      const r = await wirecage(c.client, ['-c', conf, '--', 'ip', 'link', 'show', 'wirecage']);
      assert.equal(r.code, 0, `run ${runs} failed: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^\d+: wirecage: <[^>]*\bUP\b[^>]*> mtu 1420 /, `run ${runs}`);
    }
    const elapsed = Date.now() - started;
    this.test!.title += ` (${runs} runs in ${(elapsed / 1000).toFixed(1)} s, ${Math.round(elapsed / runs)} ms per run)`;
    assert.ok(runs >= MIN_SEQUENTIAL_RUNS, `only ${runs} runs fit in ${SEQUENTIAL_FOR_MS} ms (${Math.round(elapsed / runs)} ms per run)`);
  });

  it(`runs ${CONCURRENT_CAGES} cages at once, same tunnel name, one key each, all reaching the server`, async function () {
    this.timeout(60_000);
    // Each cage marks itself in a shared directory and pings only once all are up, so the cages
    // provably overlap.
    const barrier = join(c.dir, 'barrier');
    await mkdir(barrier);
    const runs = [];
    const keys = [];
    for (let n = 0; n < CONCURRENT_CAGES; n++) {
      const key = await cageKey(c.dir, `par${n}`);
      keys.push(key);
      const me = srv.clientAddress(10 + n);
      await registerClient(srv, key, [me.v4]);
      const conf = await writeWgQuick(c.dir, `par${n}.conf`, { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [
        serverPeer(srv),
      ]);
      const script =
        `touch ${barrier}/${n}; ` +
        `until [ "$(ls ${barrier} | wc -l)" -ge ${CONCURRENT_CAGES} ]; do sleep 0.05; done; ` +
        `ping -n -c3 -i0.2 -W2 ${srv.v4}`;
      // /tmp is private to each cage: the barrier is shared by name.
      runs.push(wirecage(c.client, ['-c', conf, '--share', barrier, '--', 'timeout', '20', 'sh', '-c', script], { timeoutMs: 40_000 }));
    }
    const results = await Promise.all(runs);
    for (const [n, r] of results.entries()) {
      assert.equal(r.code, 0, `cage ${n}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /3 packets transmitted, 3 received/, `cage ${n}`);
      assert.match(r.stdout, new RegExp(`from ${srv.v4.replace(/\./g, '\\.')}: icmp_seq=1`), `cage ${n}`);
    }
    const dump = await srv.wg.dump();
    for (const key of keys) {
      const peer = dump.peers.find((p) => p.publicKey === key.publicKey);
      assert.ok(peer?.latestHandshake && peer.rxBytes > 0, `the server saw nothing from ${key.publicKey}`);
    }
  });
});
