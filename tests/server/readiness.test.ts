// GET /readyz on a real `wirecagesrv up` in the lab: 200 while the registry
// takes a write, WireGuard's socket is bound and the NAT is up; 503 naming
// the part that is not, made so for real: another process holding the
// registry's write lock, the NAT's TUN taken down inside its namespace, the
// kernel NAT's nftables table deleted. /healthz (liveness) stays 200 throughout.
// The metrics listener answers /readyz too, with the same answer.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runOrThrow } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';

const METRICS_PORT = 9586;

interface Probe {
  status: number;
  body: { status?: string; error?: string; checks?: Record<string, string> };
}

describe('wirecagesrv /readyz', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess;
  let state: string;
  after(async () => {
    await server?.stop();
    await lab.teardown();
  });

  before(async () => {
    l = await srvLab(lab);
    state = join(l.dir, 'state', 'registry.db');
    server = await startWirecagesrv(l, { state, args: ['--metrics-listen', `${l.srvAddr}:${METRICS_PORT}`] });
  });

  async function probe(route = '/readyz', port = 8443): Promise<Probe> {
    const r = await l.cli.runOrThrow('curl', ['-sS', '--max-time', '5', '-w', '\n%{http_code}', `http://${l.srvAddr}:${port}${route}`]);
    const lines = r.stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    return { status, body: JSON.parse(lines.join('\n')) as Probe['body'] };
  }

  /** Probes until one answers `status` (a result is reused for a second, so a change shows within about that); the metrics listener answers the same. */
  const until = (status: number, what: string) =>
    waitFor(async () => ((await probe()).status === status ? probe() : null), {
      what,
      timeoutMs: 10_000,
      intervalMs: 200,
      describe: () => server.describe(),
    }).then(async (p) => {
      // The answer after the wait, read again: the same state twice.
      assert.equal(p.status, status, JSON.stringify(p.body));
      assert.deepEqual(await probe('/readyz', METRICS_PORT), p, "the metrics listener's /readyz answers otherwise");
      return p;
    });

  it('answers 200 with every check ok on a running server, for GET and HEAD', async () => {
    const p = await probe();
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.deepEqual(p.body, { status: 'ready', checks: { registry: 'ok', wireguard: 'ok', nat: 'ok' } });
    const head = await l.cli.runOrThrow('curl', [
      '-sS',
      '--max-time',
      '5',
      '-I',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${l.srvAddr}:8443/readyz`,
    ]);
    assert.equal(head.stdout, '200');
    // The metrics listener: the same answer (one implementation), for GET only; its metrics still at /metrics.
    assert.deepEqual(await probe('/readyz', METRICS_PORT), p);
    const post = await l.cli.runOrThrow('curl', [
      '-sS',
      '--max-time',
      '5',
      '-X',
      'POST',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${l.srvAddr}:${METRICS_PORT}/readyz`,
    ]);
    assert.equal(post.stdout, '405');
    assert.match(
      (await l.cli.runOrThrow('curl', ['-sS', '--max-time', '5', `http://${l.srvAddr}:${METRICS_PORT}/metrics`])).stdout,
      /^wirecagesrv_peers_registered /m,
    );
    // The probe's write is a real commit, in the file.
    const db = new Database(state, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'readyz_heartbeat'").get() as { value: string } | undefined;
      assert.ok(row && Date.now() - Date.parse(row.value) < 60_000, JSON.stringify(row));
    } finally {
      db.close();
    }
  });

  it('answers 503 naming the registry while another process holds its write lock, and 200 again once it lets go', async () => {
    const db = new Database(state, { fileMustExist: true });
    try {
      db.exec('BEGIN IMMEDIATE');
      const p = await until(503, '/readyz to answer 503 while the registry is locked');
      assert.equal(p.body.error, 'not ready: registry');
      assert.equal(p.body.checks!.registry, 'cannot write to the registry: database is locked');
      assert.equal(p.body.checks!.wireguard, 'ok');
      assert.equal(p.body.checks!.nat, 'ok');
      assert.equal((await probe('/healthz')).status, 200, 'liveness is not readiness');
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    await until(200, '/readyz to answer 200 once the lock is gone');
  });

  it('answers 503 naming the NAT while its TUN is down in its namespace, and 200 once it is up', async () => {
    const ns = natNamespace(server.pid!);
    const link = (state: 'up' | 'down') => runOrThrow('nsenter', [`--net=${ns}`, 'ip', 'link', 'set', 'wcs0', state]);
    await link('down');
    try {
      const p = await until(503, '/readyz to answer 503 while the NAT TUN is down');
      assert.equal(p.body.error, 'not ready: nat');
      assert.equal(p.body.checks!.nat, "the NAT's TUN wcs0 is down");
      assert.equal(p.body.checks!.registry, 'ok');
    } finally {
      await link('up');
    }
    await until(200, '/readyz to answer 200 once the TUN is up');
  });
});

describe('wirecagesrv --nat kernel /readyz', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let server: LabProcess | undefined;
  after(async () => {
    await server?.stop();
    await lab.teardown();
  });

  it('answers 503 naming the NAT while its nftables table is gone', async () => {
    const l = await srvLab(lab);
    // In the lab's server namespace: its nftables and forwarding are the lab's, never the machine's.
    server = await startWirecagesrv(l, ['--nat', 'kernel']);
    const probe = async () => {
      const r = await l.cli.runOrThrow('curl', ['-sS', '--max-time', '5', '-w', '\n%{http_code}', `http://${l.srvAddr}:8443/readyz`]);
      const lines = r.stdout.trimEnd().split('\n');
      return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) as Probe['body'] };
    };
    assert.deepEqual(await probe(), { status: 200, body: { status: 'ready', checks: { registry: 'ok', wireguard: 'ok', nat: 'ok' } } });
    await l.srv.runOrThrow('nft', ['delete', 'table', 'inet', 'wirecagesrv_nat']);
    const p = await waitFor(
      async () => {
        const r = await probe();
        return r.status === 503 ? r : null;
      },
      { what: '/readyz to answer 503 without the table', timeoutMs: 10_000, intervalMs: 200, describe: () => server!.describe() },
    );
    assert.equal(p.body.error, 'not ready: nat');
    assert.equal(p.body.checks!.nat, "the kernel NAT's nftables table is missing");
  });
});

/** The NAT namespace stage 2 (a descendant of `up`) holds open: a network namespace fd other than its own. */
function natNamespace(upPid: number): string {
  const ppid = (pid: number) => Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const descends = (pid: number) => {
    for (let p = pid; p > 1; p = ppid(p)) if (p === upPid) return true;
    return false;
  };
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.includes('stage2/main.js') || !descends(pid)) continue;
    } catch {
      continue; // gone meanwhile
    }
    const own = readlinkSync(`/proc/${pid}/ns/net`);
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target.startsWith('net:') && target !== own) return `/proc/${pid}/fd/${fd}`;
    }
  }
  throw new Error(`no NAT namespace found under pid ${upPid}`);
}
