// A tunnel that heals, with a server name (issue 14): the server forgets the
// client while its cage runs (`wirecagesrv peers remove`); the handshakes
// that follow go unanswered, and after --reresolve-after seconds of that
// stage 2 registers again, without restarting the cage: the same command, its
// same UDP socket, gets answers again. Meanwhile `wirecage show --json` says
// "handshaking" and why, then "up" again (the cage's health file). A real
// wirecagesrv in the NAT lab (tests/lib/srv-lab.ts), its internet host
// echoing UDP; the LAN is not used.
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WIRECAGE_BIN, startFixture } from '../lib/cage.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { INET4, SRV_BIN, addServer, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const SERVICE = fileURLToPath(new URL('../server/fixtures/forwards-service.mjs', import.meta.url));
const ADMIN = 'lab-admin-heal-lease-0123456789';
// One UDP socket for the whole run: a numbered datagram every 200 ms, each echo printed with its number.
const TICKER = `const s = require('node:dgram').createSocket('udp4'); let n = 0;
s.on('message', (m) => console.log('echo ' + String(m).split(' ').pop()));
s.on('error', () => {});
console.log('caged ' + process.pid);
setInterval(() => s.send(String(++n), 5353, '${INET4}'), 200);`;

interface ShownPeer {
  state?: string;
  upSince?: number | null;
  lastError?: string | null;
}

describe('wirecage run NAME: the server forgets the client while the cage runs', function () {
  this.timeout(180_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess;
  let cage: LabProcess | undefined;
  let adminFile: string;
  after(async () => {
    await cage?.stop();
    await lab.teardown();
  });

  const admin = (args: string[]) =>
    l.cli.run(process.execPath, [SRV_BIN, 'peers', ...args, '--api', `http://${l.srvAddr}:8443`], {
      env: { PATH: process.env.PATH, HOME: l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile },
      timeoutMs: 30_000,
    });
  const echoes = () => (cage!.output().match(/^echo \d+$/gm) ?? []).map((e) => Number(e.slice(5)));

  before(async () => {
    l = await srvLab(lab, { built: ['packages/cli/dist/servers/lease-recheck.js', 'packages/cli/dist/cage/health-file.js'] });
    adminFile = await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    server = await startWirecagesrv(l, ['--admin-token-file', adminFile]);
    await addServer(l, 'lab');
    await startFixture(l.inet, SERVICE, ['8080', '5353']);
  });

  it('registers again after --reresolve-after of unanswered handshakes; the same command and socket get answers again', async () => {
    const tun = `hl${lab.token}`;
    cage = l.cli.spawn(
      process.execPath,
      [WIRECAGE_BIN, 'run', 'lab', '--tun', tun, '--reresolve-after', '4', '--log-level', 'info', '--', process.execPath, '-e', TICKER],
      { env: l.env },
    );
    const show = async (): Promise<ShownPeer> => {
      const r = await l.cli.run(process.execPath, [WIRECAGE_BIN, 'show', tun, '--json'], { env: l.env });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { peers: ShownPeer[] }[])[0]!.peers[0]!;
    };
    await waitFor(() => (cage!.assertRunning(), echoes().length >= 3), {
      what: 'echoes through the tunnel',
      timeoutMs: 30_000,
      describe: () => `${cage!.describe()}\n${server.describe()}`,
    });
    const up = await show();
    assert.equal(up.state, 'up', JSON.stringify(up));
    assert.equal(up.lastError, null);
    assert.ok(up.upSince && Math.abs(up.upSince - Date.now() / 1000) < 60, JSON.stringify(up));
    // The state file: next to the UAPI socket, the invoking user's only.
    const dir = '/run/wirecage';
    const file = (await readdir(dir)).find((f) => f.startsWith(`${tun}@`) && f.endsWith('.health.json'));
    assert.ok(file, `no health file for ${tun} in ${dir}`);
    assert.equal((await stat(join(dir, file))).mode & 0o777, 0o600);

    const key = (
      JSON.parse(await readFile(join(l.dir, 'config', 'wirecage', 'keys', 'lab.lease.json'), 'utf8')) as { client_public_key: string }
    ).client_public_key;
    const rm = await admin(['remove', key]);
    assert.equal(rm.code, 0, rm.stderr);
    const removedAt = Date.now();
    const before = Math.max(...echoes());

    // While the server does not know the cage (the --reresolve-after 4 s before registering again): show says so.
    const down = await waitFor(
      async () => {
        cage!.assertRunning();
        const p = await show();
        return p.state === 'handshaking' ? p : null;
      },
      { what: '`show` to report the failing handshakes', timeoutMs: 60_000, intervalMs: 250, describe: () => cage!.describe() },
    );
    assert.equal(down.upSince, null);

    await waitFor(() => (cage!.assertRunning(), echoes().some((n) => n > before + 5)), {
      what: 'echoes again after registering again',
      timeoutMs: 60_000,
      describe: () => `${cage!.describe()}\n${server.describe()}`,
    });
    console.log(
      `      echoes again ${Date.now() - removedAt} ms after the peer was removed (15 s of it for WireGuard to find the server silent)`,
    );
    const out = cage.output();
    assert.match(out, /handshakes failing: registered again with http:\/\/\S+ \(lease until \S+\)/);
    assert.equal(out.match(/^caged /gm)?.length, 1, `the command started more than once:\n${out}`);
    const listed = await admin(['list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { client_public_key: string }[]).map((p) => p.client_public_key),
      [key],
    );
    // Up again, since after the removal, and the outage's last error kept for whoever asks why.
    const again = await waitFor(async () => ((p) => (p.state === 'up' ? p : null))(await show()), {
      what: '`show` to report the tunnel up again',
      timeoutMs: 10_000,
      intervalMs: 250,
    });
    assert.ok(again.upSince! * 1000 >= removedAt - 1000, JSON.stringify(again));
    assert.match(again.lastError!, /^no handshake with \S+ for \d+ s$/);

    const exit = await cage.stop(10_000);
    assert.equal(exit.code, 143, cage.describe());
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith(`${tun}@`)),
      [],
      'the cage left files behind',
    );
  });
});
