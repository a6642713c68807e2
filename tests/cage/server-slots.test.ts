// Two `wirecage run NAME` at once, as one user, against a real wirecagesrv in
// a lab (tests/lib/srv-lab.ts): each run holds a key slot of its own
// (packages/cli/src/servers/key-slot.ts), so they are two WireGuard peers with
// two addresses. With one shared key they were one peer, whose session and
// endpoint followed the cage that handshook last: the other cage's flows broke.
// Here a download in the first cage stays SHA-256-identical while the second
// cage registers, handshakes and reaches the lab's internet; the slot's lock is
// held by the cage while it runs and never reaches the command; once both end a
// third run is in slot 1 again, with its stored registration (none made).
import assert from 'node:assert/strict';
import { closeSync, constants, existsSync, mkdirSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { flockExclusive } from '@wirecage/netns';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { INET4, INET6, SRV_INET4, addServer, runCaged, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { startInternet } from '../lib/srv-internet.js';
import { waitFor } from '../lib/wait.js';

const HTTP_PORT = 8080;
// 48 MiB at 3 MiB/s: about 16 s whatever the machine, several times the second cage's whole run.
const BIG = 48 * 1024 * 1024;
const RATE = '3M';
const MAX_KEY_SLOTS = 16;

interface LeaseFile {
  client_public_key: string;
  registration: { client_address: string };
}

const hostOf = (cidr: string) => cidr.replace(/\/\d+$/, '');
/** The cage's IPv4 address, from `ip -o -4 addr show dev wirecage` inside. */
const cageAddress = (out: string) => /^\d+: wirecage\s+inet (\S+)\//m.exec(out)?.[1];

describe('wirecage run NAME twice at once: a key slot each', function () {
  this.timeout(300_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let internet: LabProcess;
  let bigSha256: string;
  let keys: string;

  const lease = async (file: string) => JSON.parse(await readFile(join(keys, file), 'utf8')) as LeaseFile;
  const registrations = () => server.output().match(/registered peer /g)?.length ?? 0;
  /** Whether someone holds the flock of `file` (flock(1) exits 9 here when it cannot take it at once). */
  const locked = async (file: string) => {
    const r = await l.cli.run('flock', ['-n', '-E', '9', join(keys, file), 'true']);
    assert.ok(r.code === 0 || r.code === 9, `flock: ${r.code} ${r.stderr}`);
    return r.code === 9;
  };
  const describeAll = () => `${server.describe()}\n${internet.describe()}`;

  before(async () => {
    l = await srvLab(lab);
    await l.srv.addRoute('0.0.0.0/0', { via: INET4 });
    await l.srv.addRoute('::/0', { via: INET6 });
    ({ proc: internet, bigSha256 } = await startInternet(l.inet, INET4, BIG, HTTP_PORT));
    server = await startWirecagesrv(l);
    await addServer(l, 'lab');
    keys = join(l.env.XDG_CONFIG_HOME!, 'wirecage', 'keys');
  });

  it("the second run gets its own key and address, reaches the internet, and leaves the first one's download whole", async () => {
    let finished = false;
    const first = runCaged(
      l,
      [
        'sh',
        '-c',
        `ip -o -4 addr show dev wirecage; curl -sS --limit-rate ${RATE} --max-time 150 http://${INET4}:${HTTP_PORT}/big | sha256sum`,
      ],
      {
        timeoutMs: 170_000,
      },
    ).finally(() => {
      finished = true;
    });
    const underWay = async () =>
      (await l.inet.runOrThrow('ss', ['-Htn', 'state', 'established', `sport = :${HTTP_PORT}`])).stdout.trim() !== '';
    await waitFor(underWay, {
      what: "the first cage's download to be under way",
      timeoutMs: 60_000,
      intervalMs: 100,
      describe: describeAll,
    });
    assert.ok(await locked('lab.lock'), 'the first cage holds slot 1');

    // ls holds one fd more: the directory it lists (fd 3), as in isolation.test.ts.
    const second = await runCaged(l, [
      'sh',
      '-c',
      `ls /proc/self/fd; echo --; ip -o -4 addr show dev wirecage; curl -sS --max-time 20 http://${INET4}:${HTTP_PORT}/hello; ` +
        // Traffic of its own for a while, both ways (its acks): the server's session with each cage is busy at once.
        `curl -s -o /dev/null -w 'got %{size_download}\\n' --limit-rate ${RATE} --max-time 4 http://${INET4}:${HTTP_PORT}/big; true`,
    ]);
    const overlapped = !finished;
    // The download first: that is what sharing one key broke (it ended early, cut).
    const r = await first;
    assert.equal(r.code, 0, `${r.stderr}\n${describeAll()}`);
    assert.equal(r.stdout.split('\n')[1]!.split(/\s/)[0], bigSha256, "the first cage's download was cut or damaged");
    assert.ok(overlapped, 'the download ended before the second cage had run: it proves nothing (make it longer)');
    assert.equal(second.code, 0, `${second.stderr}\n${describeAll()}`);
    const [fds, rest] = second.stdout.split('--\n') as [string, string];
    assert.deepEqual(fds.trim().split('\n'), ['0', '1', '2', '3'], "the slot's lock (or anything else) reached the command");
    assert.ok(Number(/^got (\d+)$/m.exec(rest)?.[1]) > 0, `the second cage's own download got nothing: ${rest}`);
    assert.match(rest, new RegExp(`^hello ${SRV_INET4.replace(/\./g, '\\.')}$`, 'm'), "the second cage reaches the lab's internet");
    assert.ok(existsSync(join(keys, 'lab.2.key')), "slot 2's key was made");
    const two = await lease('lab.2.lease.json');
    assert.equal(cageAddress(rest), hostOf(two.registration.client_address));

    const one = await lease('lab.lease.json');
    assert.equal(cageAddress(r.stdout), hostOf(one.registration.client_address));
    assert.notEqual(one.client_public_key, two.client_public_key);
    assert.notEqual(hostOf(one.registration.client_address), hostOf(two.registration.client_address));
    assert.equal(registrations(), 2, 'one registration per slot');
  });

  it('once both ended, the next run is in slot 1 again with its stored registration', async () => {
    assert.equal(await locked('lab.lock'), false, 'slot 1 is free once its cage ended');
    assert.equal(await locked('lab.2.lock'), false, 'slot 2 is free once its cage ended');
    const before = await lease('lab.lease.json');
    const made = registrations();
    const r = await runCaged(l, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'wirecage']);
    assert.equal(r.code, 0, `${r.stderr}\n${describeAll()}`);
    assert.equal(r.stderr, '');
    assert.equal(cageAddress(r.stdout), hostOf(before.registration.client_address));
    assert.equal(registrations(), made, "no registration: slot 1's stored answer is reused");
    assert.deepEqual(await lease('lab.lease.json'), before);
    assert.equal(existsSync(join(keys, 'lab.3.key')), false);
  });

  it(`with all ${MAX_KEY_SLOTS} slots held, a run is refused with a clear error and no registration`, async () => {
    mkdirSync(keys, { recursive: true });
    const fds: number[] = [];
    try {
      for (let k = 1; k <= MAX_KEY_SLOTS; k++) {
        const fd = openSync(join(keys, k === 1 ? 'lab.lock' : `lab.${k}.lock`), constants.O_RDWR | constants.O_CREAT, 0o600);
        fds.push(fd);
        assert.ok(flockExclusive(fd), `slot ${k} is free`);
      }
      const made = registrations();
      const r = await runCaged(l, ['true']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(
        r.stderr,
        /^wirecage: all 16 key slots of server "lab" are in use: .*wirecage run lab --name CAGE.*wirecage exec CAGE -- CMD/,
      );
      assert.equal(registrations(), made);
    } finally {
      fds.forEach((fd) => closeSync(fd));
    }
  });
});
