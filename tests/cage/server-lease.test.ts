// `wirecage run NAME` keeps its registration (keys/NAME.lease.json) against a
// real wirecagesrv in a lab (tests/lib/srv-lab.ts; its internet and LAN are
// not used): 25 runs in a row succeed where registering each time would meet
// the server's limit (burst 10) at the 13th, and the server renews the lease
// only once; with the API refused (an nftables rule in the server's
// namespace: the API and WireGuard live in one process) runs go on, from the
// stored answer and, past half its lease, from it as a fallback with a
// warning; after `wirecagesrv peers remove KEY` the next run registers again
// within the run (stage 2, after the handshake with the stored answer fails)
// and its command runs once; with WireGuard blocked, the run registers again
// once and then exits 125 saying neither answer got a handshake, the command
// never started; a second wirecagesrv with another key answering on the same
// URL (a man in the middle) is refused with exit 125 naming both keys, and no
// WireGuard packet reaches it.
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nsRun, Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { SRV_BIN, addServer, runCaged, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { writeSecretFile } from '../lib/wg.js';

const ADMIN = 'lab-admin-lease-0123456789';

interface LeaseFile {
  api_url: string;
  client_public_key: string;
  registered_at: string;
  registration?: { server_public_key: string; lease_expires: string };
  pinned_server_public_key: string;
}

describe('wirecage run NAME keeps its registration (lease, API down, pinning)', function () {
  this.timeout(300_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let adminFile: string;
  let leaseFile: string;

  const readLease = async () => JSON.parse(await readFile(leaseFile, 'utf8')) as LeaseFile;
  /** Moves registered_at back so that half the lease has passed (the next run registers, or falls back). */
  const ageLease = async () => {
    const s = await readLease();
    const expires = Date.parse(s.registration!.lease_expires);
    s.registered_at = new Date(Date.now() - (expires - Date.now()) - 60_000).toISOString();
    await writeFile(leaseFile, JSON.stringify(s), { mode: 0o600 });
  };
  const peersList = async () => {
    const r = await l.cli.run(process.execPath, [SRV_BIN, 'peers', 'list', '--json', '--api', `http://${l.srvAddr}:8443`], {
      env: { PATH: process.env.PATH, HOME: l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { client_public_key: string; lease_expires: string }[];
  };
  const nft = (script: string) => l.srv.runOrThrow('nft', ['-f', '-'], { input: script });
  const runShortWait = () =>
    nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--wait-handshake', '3', '--', 'true'], { env: l.env, timeoutMs: 60_000 });

  before(async () => {
    l = await srvLab(lab, {
      built: [
        'apps/wirecagesrv/dist/commands/peers/list.js',
        'apps/wirecagesrv/dist/commands/peers/remove.js',
        'packages/cli/dist/servers/lease-state.js',
      ],
    });
    adminFile = await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    server = await startWirecagesrv(l, ['--admin-token-file', adminFile]);
    await addServer(l, 'lab');
    leaseFile = join(l.dir, 'config', 'wirecage', 'keys', 'lab.lease.json');
  });

  it('25 runs in a row all succeed, and the server saw one registration', async () => {
    const first = await runCaged(l, ['true']);
    assert.equal(first.code, 0, `${first.stderr}\n${server.describe()}`);
    assert.equal((await stat(leaseFile)).mode & 0o777, 0o600);
    const s = await readLease();
    assert.equal(s.pinned_server_public_key, s.registration!.server_public_key);
    const [peer] = await peersList();
    assert.equal(peer!.client_public_key, s.client_public_key);
    const lease = peer!.lease_expires;
    let ok = 1;
    for (let i = 1; i < 25; i++) {
      const r = await runCaged(l, ['true']);
      assert.equal(r.code, 0, `run ${i + 1}: ${r.stderr}\n${server.describe()}`);
      assert.equal(r.stderr, '', `run ${i + 1}`);
      ok++;
    }
    console.log(`      ${ok} of 25 runs succeeded`);
    // A registration renews the lease to a whole one from then; handshakes only when that gains an hour.
    const after = await peersList();
    assert.equal(after.length, 1);
    assert.equal(after[0]!.lease_expires, lease, 'no run after the first registered again');
    assert.equal(server.output().match(/registered peer /g)?.length, 1);
    assert.deepEqual(await readLease(), s, 'the stored answer is reused as it is');
  });

  it('with the API refused, runs keep working: from the stored answer, and past half its lease with a warning', async () => {
    await nft(
      'table inet lab_api_down {\n chain input {\n  type filter hook input priority -10;\n  tcp dport 8443 reject with tcp reset\n }\n}\n',
    );
    try {
      const curl = await l.cli.run('curl', ['-s', '-o', '/dev/null', '--max-time', '2', `http://${l.srvAddr}:8443/healthz`]);
      assert.notEqual(curl.code, 0, 'the API must be unreachable');
      for (let i = 0; i < 5; i++) {
        const r = await runCaged(l, ['true']);
        assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
        assert.equal(r.stderr, '');
      }
      await ageLease();
      const r = await runCaged(l, ['true']);
      assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
      assert.match(
        r.stderr,
        /^wirecage: warning: cannot register with http:\/\/\S+\/v1\/register: ECONNREFUSED; using the registration stored in \S+lab\.lease\.json \(lease until \S+\)\n$/,
      );
    } finally {
      await nft('delete table inet lab_api_down\n');
    }
    // With the API back, that run's successor registers again (the answer was past half its lease).
    const before = (await readLease()).registered_at;
    const again = await runCaged(l, ['true']);
    assert.equal(again.code, 0, again.stderr);
    assert.notEqual((await readLease()).registered_at, before);
  });

  it('after `wirecagesrv peers remove KEY` the next run registers again within the run, and its command runs once', async () => {
    const before = await readLease();
    const rm = await l.cli.run(
      process.execPath,
      [SRV_BIN, 'peers', 'remove', before.client_public_key, '--api', `http://${l.srvAddr}:8443`],
      {
        env: { PATH: process.env.PATH, HOME: l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile },
        timeoutMs: 30_000,
      },
    );
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await peersList()).length, 0);
    const registered = server.output().match(/registered peer /g)?.length ?? 0;
    // The command appends a line to a shared file: it must run exactly once, after the second handshake.
    const shared = join(l.dir, 'shared');
    await mkdir(shared, { recursive: true });
    const count = join(shared, 'runs');
    const t0 = Date.now();
    const r = await nsRun(
      l.cli,
      process.execPath,
      [WIRECAGE_BIN, 'run', 'lab', '--wait-handshake', '3', '--share', shared, '--', 'sh', '-c', `echo ran >> ${count}`],
      {
        env: l.env,
        timeoutMs: 60_000,
      },
    );
    console.log(`      one run with a forgotten registration: ${Date.now() - t0} ms (3 s of it waiting for the stored answer's handshake)`);
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.match(
      r.stderr,
      /^wirecage: warning: no WireGuard handshake with \S+ within 3 s with the registration stored in \S+lab\.lease\.json \(has the server forgotten this client\?\): registered again with http:\/\/\S+\n$/,
    );
    assert.equal(await readFile(count, 'utf8'), 'ran\n', 'the command ran once');
    const after = await readLease();
    assert.ok(after.registration, 'the new answer is stored');
    assert.notEqual(after.registered_at, before.registered_at);
    assert.equal(after.pinned_server_public_key, before.pinned_server_public_key);
    assert.equal(server.output().match(/registered peer /g)?.length, registered + 1, 'one registration');
    const peers = await peersList();
    assert.equal(peers.length, 1);
    assert.equal(peers[0]!.lease_expires, after.registration.lease_expires);
    // The next run takes the new answer as it is.
    const next = await runCaged(l, ['true']);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stderr, '');
    assert.deepEqual(await readLease(), after);
  });

  it('with --publish, a forgotten registration is seen when the forward is refused, and registered again there', async () => {
    const before = await readLease();
    const rm = await l.cli.run(
      process.execPath,
      [SRV_BIN, 'peers', 'remove', before.client_public_key, '--api', `http://${l.srvAddr}:8443`],
      {
        env: { PATH: process.env.PATH, HOME: l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile },
        timeoutMs: 30_000,
      },
    );
    assert.equal(rm.code, 0, rm.stderr);
    const r = await nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--publish', '28123:8000', '--', 'true'], {
      env: l.env,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.match(
      r.stderr,
      /^wirecage: warning: \S+\/v1\/portforward refused the forward tcp 28123:8000: HTTP 404: no peer is registered with the key \S+; register first \(POST \/v1\/register\): registered again with http:\/\/\S+\n$/,
    );
    const after = await readLease();
    assert.ok(after.registration);
    assert.notEqual(after.registered_at, before.registered_at);
    assert.equal((await peersList()).length, 1);
  });

  it('with WireGuard blocked, a run registers again once, then exits 125 saying neither answer got a handshake; the command never starts', async () => {
    // WireGuard dropped; the API's new connections counted (each registration opens one).
    await nft(
      'table inet lab_wg_down {\n chain input {\n  type filter hook input priority -10;\n  udp dport 51820 drop\n  tcp dport 8443 tcp flags & (syn | ack) == syn counter name api\n }\n counter api {}\n}\n',
    );
    const shared = join(l.dir, 'shared-blocked');
    await mkdir(shared, { recursive: true });
    const marker = join(shared, 'ran');
    try {
      const r = await nsRun(
        l.cli,
        process.execPath,
        [WIRECAGE_BIN, 'run', 'lab', '--wait-handshake', '2', '--share', shared, '--', 'touch', marker],
        {
          env: l.env,
          timeoutMs: 60_000,
        },
      );
      assert.equal(r.code, 125, r.stderr);
      assert.match(
        r.stderr,
        /^wirecage: warning: no WireGuard handshake with \S+ within 2 s with the registration stored in \S+lab\.lease\.json \(has the server forgotten this client\?\): registered again with http:\/\/\S+\nwirecage: no WireGuard handshake with \S+ within 2 s, neither with the registration stored in \S+lab\.lease\.json nor with the one made just now: is the server's WireGuard port reachable from here\?\n$/,
      );
      const api = await l.srv.runOrThrow('nft', ['list', 'counter', 'inet', 'lab_wg_down', 'api']);
      assert.match(api.stdout, /packets 1 bytes/, 'registered again once, not more');
      await assert.rejects(stat(marker), { code: 'ENOENT' }, 'the command never started');
    } finally {
      await nft('delete table inet lab_wg_down\n');
    }
    const ok = await runCaged(l, ['true']);
    assert.equal(ok.code, 0, `${ok.stderr}\n${server.describe()}`);
  });

  it('a server with another key answering on the same URL is refused (125, both keys named) and gets no WireGuard packet', async () => {
    const pinned = (await readLease()).pinned_server_public_key;
    await server.stop();
    // The man in the middle: another wirecagesrv (its own state, so its own key) on the same address and ports.
    const mitm = await startWirecagesrv(l, { args: ['--admin-token-file', adminFile], state: join(l.dir, 'mitm', 'registry.db') });
    await nft(
      'table inet lab_mitm {\n chain input {\n  type filter hook input priority -10;\n  udp dport 51820 counter name wg\n }\n counter wg {}\n}\n',
    );
    try {
      await ageLease();
      const stored = await readFile(leaseFile, 'utf8');
      const r = await runShortWait();
      assert.equal(r.code, 125, `${r.stderr}\n${mitm.describe()}`);
      const m =
        /answered with the server key (\S+), but the key pinned for "lab" \(in \S+\) is (\S+): someone may be impersonating the server, so nothing was sent\. .*wirecage add-server lab http:\/\/\S+ --replace\n$/.exec(
          r.stderr,
        );
      assert.ok(m, r.stderr);
      assert.equal(m[2], pinned);
      assert.notEqual(m[1], pinned);
      const counter = await l.srv.runOrThrow('nft', ['list', 'counter', 'inet', 'lab_mitm', 'wg']);
      assert.match(counter.stdout, /packets 0 bytes 0/, 'nothing reached its WireGuard port');
      assert.equal(await readFile(leaseFile, 'utf8'), stored, 'the state (and the pin) is unchanged');
      await mitm.stop();
      // The real server back: the pinned key matches again, and the counter sees its handshake (so it would have seen one above).
      server = await startWirecagesrv(l, ['--admin-token-file', adminFile]);
      const ok = await runCaged(l, ['true']);
      assert.equal(ok.code, 0, `${ok.stderr}\n${server.describe()}`);
      const seen = await l.srv.runOrThrow('nft', ['list', 'counter', 'inet', 'lab_mitm', 'wg']);
      assert.doesNotMatch(seen.stdout, /packets 0 bytes 0/);
    } finally {
      await nft('delete table inet lab_mitm\n');
      await mitm.stop();
    }
  });
});
