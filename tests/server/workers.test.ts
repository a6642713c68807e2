// wirecagesrv's WireGuard port with data-plane workers: stage 1 binds one
// socket per shard in one SO_REUSEPORT group and hands them all to stage 2,
// whose shards each read their own. The group holds stage 2's sockets and
// nothing else, and another user's process cannot join it (the kernel admits
// only the group's uid), so no one takes a share of the peers' packets. With
// --workers 0 there is one socket, in no group at all.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startFixture } from '../lib/cage.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { joinReusePort, udpSockets } from '../lib/reuseport.js';
import { INET4, addServer, runCaged, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { createTestUser, type TestUser } from '../lib/test-user.js';

const INTERNET = fileURLToPath(new URL('./fixtures/nat-internet.mjs', import.meta.url));
const WG_PORT = 51820;
/** A port nothing in the server's namespace binds: the stranger's probe works there. */
const FREE_PORT = 51899;
const BIG = 8 * 1024 * 1024;

describe('wirecagesrv --workers: the WireGuard port as one SO_REUSEPORT group', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess | undefined;
  let stranger: TestUser;
  let bigSha256: string;
  after(async () => {
    await server?.stop();
    await lab.teardown();
  });

  before(async () => {
    l = await srvLab(lab);
    stranger = await createTestUser(lab, `${lab.id}w`);
    const internet = await startFixture(l.inet, INTERNET, [INET4, '8080', '7', String(BIG)]);
    bigSha256 = /listening ([0-9a-f]{64})/.exec(internet.output())![1]!;
    server = await startWirecagesrv(l, ['--workers', '2']);
    await addServer(l, 'lab');
  });

  /** The sockets on the WireGuard port: `count`, all held by stage 2 alone (stage 1 let its copies go; a shard may hold a dup). */
  async function heldByStage2(count: number): Promise<void> {
    const group = (await udpSockets(l.srv)).filter((s) => s.port === WG_PORT);
    const what = JSON.stringify(group, null, 1);
    assert.equal(group.length, count, `sockets on udp port ${WG_PORT}: ${what}`);
    const holders = group.flatMap((s) => s.holders);
    assert.ok(
      group.every((s) => s.holders.length > 0),
      `every socket has a holder: ${what}`,
    );
    assert.equal(new Set(holders.map((h) => h.pid)).size, 1, `one process holds them all: ${what}`);
    assert.match(holders[0]!.cmdline, /wirecagesrv\/dist\/stage2\/main\.js/, what);
    assert.notEqual(holders[0]!.pid, server!.pid, 'stage 1 holds none');
  }

  it("carries a download through the NAT's two shards", async () => {
    const r = await runCaged(l, ['sh', '-c', `curl -sS --max-time 60 http://${INET4}:8080/big | sha256sum`], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, `${r.stderr}\n${server!.describe()}`);
    assert.equal(r.stdout.split(/\s/)[0], bigSha256);
  });

  it("holds the port in two sockets of stage 2's, which another user cannot join", async () => {
    await heldByStage2(2);
    assert.equal(await joinReusePort(l.srv, WG_PORT, stranger), 'EADDRINUSE');
    // The probe itself works for that user on a free port, and the test's own uid (the group's) may
    // join: what keeps the stranger out is the kernel's uid check on an SO_REUSEPORT group.
    assert.equal(await joinReusePort(l.srv, FREE_PORT, stranger), 'joined');
    assert.equal(await joinReusePort(l.srv, WG_PORT), 'joined');
    await heldByStage2(2);
  });

  it('binds one socket outside any group with --workers 0, and still carries the download', async () => {
    await server!.stop();
    server = await startWirecagesrv(l, ['--workers', '0']);
    await heldByStage2(1);
    // Without SO_REUSEPORT no one joins, the group's own uid neither.
    assert.equal(await joinReusePort(l.srv, WG_PORT), 'EADDRINUSE');
    const r = await runCaged(l, ['sh', '-c', `curl -sS --max-time 60 http://${INET4}:8080/big | sha256sum`], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, `${r.stderr}\n${server.describe()}`);
    assert.equal(r.stdout.split(/\s/)[0], bigSha256);
  });
});
