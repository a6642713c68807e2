// The systemd units (apps/wirecagesrv/systemd) checked by systemd's own
// analyser, and sd_notify seen from systemd's side: a real unix datagram
// socket that receives, with the sender's credentials, what a real
// `wirecagesrv up` in the lab sends to $NOTIFY_SOCKET.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Lab } from '../lib/netns.js';
import { NotifyListener } from '../lib/notify-listener.js';
import type { LabProcess } from '../lib/process.js';
import { startNotified } from '../lib/srv-notified.js';
import { GATEWAY4, SRV_APP, SRV_BIN, SRV_TOKEN, SUBNET6, addServer, runCaged, srvLab, type SrvLab } from '../lib/srv-lab.js';
import { openTunToEveryone } from '../lib/test-user.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const run = promisify(execFile);
const UNITS = join(SRV_APP, 'systemd');

/** A unit file as shipped, but started from this checkout's bin (verify insists the binary exists). */
function unitCopy(dir: string, file: string, as = file): string {
  const text = readFileSync(join(UNITS, file), 'utf8');
  const changed = text.replace(/^ExecStart=\/usr\/bin\/wirecagesrv /m, `ExecStart=${SRV_BIN} `);
  assert.notEqual(changed, text, `${file} starts /usr/bin/wirecagesrv`);
  writeFileSync(join(dir, as), changed);
  return join(dir, as);
}

async function analyze(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('systemd-analyze', args, { encoding: 'utf8', timeout: 30_000 });
}

describe('wirecagesrv systemd units', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let dir: string;
  before(async () => {
    dir = await lab.tempDir();
  });
  after(() => lab.teardown());

  it('pass systemd-analyze verify: the unit, an instance of the template, and the unit with the kernel-NAT drop-in', async () => {
    const units = [unitCopy(dir, 'wirecagesrv.service'), unitCopy(dir, 'wirecagesrv@.service', 'wirecagesrv@lab.service')];
    const withDropIn = join(dir, 'kernel');
    mkdirSync(join(withDropIn, 'wirecagesrv.service.d'), { recursive: true });
    units.push(unitCopy(withDropIn, 'wirecagesrv.service'));
    copyFileSync(join(UNITS, 'kernel-nat.conf'), join(withDropIn, 'wirecagesrv.service.d', 'kernel-nat.conf'));
    for (const unit of units) {
      // verify exits 0 on unknown keys and bad values too, warning on stderr: silence is the pass.
      const r = await analyze(['verify', '--man=no', unit]);
      assert.equal(`${r.stdout}${r.stderr}`, '', `${unit}:\n${r.stdout}${r.stderr}`);
    }
    // The same analyser does flag a mistake, so the silence above means something.
    const bad = join(dir, 'bad.service');
    writeFileSync(bad, `${readFileSync(units[0]!, 'utf8')}\n[Service]\nProtectSytem=strict\n`);
    assert.match((await analyze(['verify', '--man=no', bad])).stderr, /Unknown key 'ProtectSytem'/);
  });

  it('keep capabilities out of the plain unit and give the kernel drop-in only CAP_NET_ADMIN and CAP_SYS_ADMIN', async () => {
    const plain = await analyze(['security', '--offline=yes', unitCopy(dir, 'wirecagesrv.service')]);
    process.stdout.write(
      `      systemd-analyze security wirecagesrv.service: ${/Overall exposure level for \S+: (.*)$/m.exec(plain.stdout)?.[1]}\n`,
    );
    assert.match(plain.stdout, /✓ CapabilityBoundingSet=~CAP_SYS_ADMIN/);
    assert.match(plain.stdout, /✓ CapabilityBoundingSet=~CAP_NET_ADMIN/);
    assert.match(plain.stdout, /✓ NoNewPrivileges=/);
    assert.match(plain.stdout, /✓ RestrictNamespaces=~mnt/);
    const kernel = join(dir, 'kernel-sec');
    mkdirSync(join(kernel, 'wirecagesrv.service.d'), { recursive: true });
    const unit = unitCopy(kernel, 'wirecagesrv.service');
    copyFileSync(join(UNITS, 'kernel-nat.conf'), join(kernel, 'wirecagesrv.service.d', 'kernel-nat.conf'));
    const k = await analyze(['security', '--offline=yes', unit]);
    process.stdout.write(`      with kernel-nat.conf: ${/Overall exposure level for \S+: (.*)$/m.exec(k.stdout)?.[1]}\n`);
    assert.match(k.stdout, /✗ CapabilityBoundingSet=~CAP_NET_ADMIN/);
    assert.match(k.stdout, /✗ CapabilityBoundingSet=~CAP_SYS_ADMIN/);
    assert.match(k.stdout, /✓ CapabilityBoundingSet=~CAP_NET_\(BIND_SERVICE\|BROADCAST\|RAW\)/);
    assert.match(k.stdout, /✓ CapabilityBoundingSet=~CAP_\(DAC_\*\|FOWNER\|IPC_OWNER\)/);
    assert.match(k.stdout, /✓ RestrictNamespaces=~user/);
  });
});

const isStage2 = (pid: number) =>
  readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .some((a) => a.endsWith('stage2/main.js'));

describe('wirecagesrv up under a Type=notify supervisor', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess | undefined;
  let notify: NotifyListener | undefined;
  const got = () => notify!.got;
  after(() => lab.teardown());

  before(async () => {
    l = await srvLab(lab);
    ({ server, notify } = await startNotified(l, { env: { WATCHDOG_USEC: '400000' } }));
  });

  it('sends READY=1 from stage 2 once the API, WireGuard and the NAT serve', async () => {
    const ready = await notify!.ready(server!);
    assert.match(ready.text, /^STATUS=serving 0 peer\(s\)$/m);
    assert.ok(isStage2(ready.pid), `READY=1 came from pid ${ready.pid}, not stage 2`);
    const r = await l.cli.runOrThrow('curl', ['-sS', '--max-time', '5', '-w', ' %{http_code}', `http://${l.srvAddr}:8443/readyz`]);
    assert.match(r.stdout, / 200$/, r.stdout);
  });

  it('sends WATCHDOG=1 every half of $WATCHDOG_USEC', async () => {
    // 400 ms asked for: one every 200 ms. Counted over 2 s, allowing a machine twice as slow.
    const from = Date.now();
    await waitFor(() => Date.now() - from >= 2000, { what: '2 s of keep-alives', timeoutMs: 5_000, intervalMs: 100 });
    const pings = got().filter((n) => n.text === 'WATCHDOG=1' && n.at >= from && n.at < from + 2000);
    assert.ok(pings.length >= 4 && pings.length <= 11, `${pings.length} WATCHDOG=1 in 2 s`);
    assert.ok(pings.every((n) => isStage2(n.pid)));
  });

  it('sends STOPPING=1 on SIGTERM before it exits, and exits 0', async () => {
    const exit = await server!.stop(15_000);
    assert.equal(exit.code, 0, server!.describe());
    const texts = got().map((n) => n.text);
    const stopping = texts.indexOf('STOPPING=1');
    assert.ok(stopping > texts.findIndex((t) => t.startsWith('READY=1')), texts.join(' | '));
    // Nothing after STOPPING=1: the watchdog stops with it.
    assert.deepEqual(texts.slice(stopping + 1), []);
  });
});

describe('wirecagesrv up as the unit runs it', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let server: LabProcess | undefined;
  let notify: NotifyListener | undefined;
  after(async () => {
    notify?.close();
    await server?.stop();
    await lab.teardown();
  });

  it('serves as a user of its own with an empty capability bounding set and no_new_privs, from credentials and WIRECAGESRV_ settings alone', async () => {
    l = await srvLab(lab);
    await openTunToEveryone(lab);
    const nobody = 65534;
    // What systemd prepares: credentials and the state directory the service's user alone reads.
    const creds = await lab.tempDir();
    await writeSecretFile(creds, 'auth-token', `${SRV_TOKEN}\n`);
    const stateDir = await lab.tempDir();
    for (const d of [creds, stateDir, join(creds, 'auth-token')]) await chown(d, nobody, nobody);
    const sockDir = await lab.tempDir();
    chmodSync(sockDir, 0o755);
    notify = new NotifyListener(join(sockDir, 'notify'));
    chmodSync(notify.path, 0o777);
    // CapabilityBoundingSet= (empty), AmbientCapabilities= (none), NoNewPrivileges=yes, DynamicUser (a uid of no account here).
    const unit = ['setpriv', `--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', '--bounding-set=-all', '--inh-caps=-all', '--nnp'];
    server = l.srv.spawn(unit[0]!, [...unit.slice(1), process.execPath, SRV_BIN, 'up'], {
      env: {
        PATH: process.env.PATH,
        NOTIFY_SOCKET: notify.path,
        CREDENTIALS_DIRECTORY: creds,
        STATE_DIRECTORY: stateDir,
        WIRECAGESRV_WG_ENDPOINT: `${l.srvAddr}:51820`,
        WIRECAGESRV_API_LISTEN: `${l.srvAddr}:8443`,
        WIRECAGESRV_INSECURE_HTTP: 'true',
        WIRECAGESRV_SUBNET6: SUBNET6,
      },
    });
    // As systemd does: the start is over when READY=1 arrives.
    const ready = await notify.ready(server);
    assert.equal(ready.uid, nobody);
    assert.match(readFileSync(`/proc/${ready.pid}/status`, 'utf8'), /^NoNewPrivs:\s+1$/m);
    // `up` itself holds no capability, and could gain none.
    assert.match(readFileSync(`/proc/${server.pid}/status`, 'utf8'), /^CapBnd:\s+0+$/m);
    const r = await l.cli.runOrThrow('curl', ['-sS', '--max-time', '5', `http://${l.srvAddr}:8443/readyz`]);
    assert.deepEqual(JSON.parse(r.stdout), { status: 'ready', checks: { registry: 'ok', wireguard: 'ok', nat: 'ok' } });
    // A cage's packets through the tunnel to the NAT's gateway and back.
    await addServer(l, 'lab');
    const ping = await runCaged(l, ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '5', GATEWAY4]);
    assert.equal(ping.code, 0, `${ping.stdout}${ping.stderr}\n${server.describe()}`);
    assert.match(ping.stdout, /2 received/);
  });
});
