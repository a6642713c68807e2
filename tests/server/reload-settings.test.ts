// The settings file (--config-file) of a real `wirecagesrv up`, read again on
// reload: in the userspace NAT and the kernel NAT, an --allow-dest moved
// from the lab's internet to its LAN makes the LAN reachable and the
// internet refused for new flows, while a download from the internet under
// way at the reload arrives whole (established flows carry on); the log
// level set in the file takes effect (debug lines appear); a bad file
// refuses the reload with file:line and the settings in force stay; a flag
// wins over the file, and the reload's answer says so; the same file as a
// unit's EnvironmentFile= (in the environment too) still reloads. Each reload is waited
// for by its answer or its RELOADING=1 ... READY=1, never by time.
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import { NotifyListener } from '../lib/notify-listener.js';
import type { LabProcess } from '../lib/process.js';
import { INET4, LAN_HOST, SRV_BIN, addServer, runCaged, scrapeMetric, type SrvLab } from '../lib/srv-lab.js';
import { natProbes, startInternet } from '../lib/srv-internet.js';
import { startNotified } from '../lib/srv-notified.js';
import { srvSuite } from '../lib/srv-suite.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const ADMIN_TOKEN = 'lab-admin-token-settings-0123456789';
// 24 MiB at 2 MiB/s: about 12 s whatever the machine, far longer than a reload.
const BIG = 24 * 1024 * 1024;
const RATE = '2M';
/**
 * Two TCP connections to the internet at once: the first an HTTP keep-alive request, held open once
 * answered (so it holds its flow for sure), then one to the half-close service. "limited" when the
 * second is refused (the userspace NAT resets it after accepting, the kernel NAT refuses its SYN),
 * "both" when it is answered.
 */
const HELD =
  `const net=require('net');const out=(t)=>{console.log(t);process.exit(0)};const a=net.connect(8080,'${INET4}');` +
  `a.on('error',(e)=>out('first '+e.code));a.on('connect',()=>a.write('GET /hello HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));` +
  `a.once('data',()=>{const b=net.connect({port:8082,host:'${INET4}',allowHalfOpen:true});b.on('connect',()=>b.end());b.on('data',()=>{});` +
  `b.on('error',(e)=>out(e.code==='ECONNRESET'||e.code==='ECONNREFUSED'?'limited':e.code));b.on('end',()=>out('both'))})`;

/** Writes the settings file as an operator's tool would: a new file renamed over the old one. */
function writeSettings(file: string, lines: string[]): void {
  writeFileSync(`${file}.new`, lines.join('\n') + '\n', { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

for (const mode of ['userspace', 'kernel'] as const) {
  describe(`wirecagesrv --config-file reloads the egress policy and the log level live (${mode} NAT)`, function () {
    this.timeout(180_000);
    const s = srvSuite();
    let server: LabProcess | undefined;
    let notify: NotifyListener | undefined;
    let settings: string;
    let adminFile: string;
    let bigSha256: string;
    const METRICS = () => `${s.l.srvAddr}:9586`;

    before(async () => {
      ({ bigSha256 } = await startInternet(s.l.inet, INET4, BIG));
      await startInternet(s.l.lan, LAN_HOST);
      adminFile = await writeSecretFile(s.l.dir, 'admin-token', `${ADMIN_TOKEN}\n`);
      settings = join(s.l.dir, 'wirecagesrv.env');
      // The internet open, the LAN refused; every `wirecage run` registers, more than the default burst allows.
      const first = [`WIRECAGESRV_ALLOW_DEST="10.99.1.0/24"`, 'WIRECAGESRV_REGISTER_RATE=100', 'WIRECAGESRV_MAX_FLOWS_PER_PEER=1'];
      writeSettings(settings, [
        "# as a unit's EnvironmentFile= would hold it",
        '',
        ...first,
        '; the flag wins over the line above',
        `WIRECAGESRV_CONFIG_FILE=${settings}`,
      ]);
      // The kernel run starts as the unit does: systemd's EnvironmentFile= has put the same file into the
      // environment, which names the file itself; variables holding the file's values do not pin them.
      const asUnit = mode === 'kernel';
      const unitEnv = {
        WIRECAGESRV_CONFIG_FILE: settings,
        WIRECAGESRV_ALLOW_DEST: '10.99.1.0/24',
        WIRECAGESRV_REGISTER_RATE: '100',
        WIRECAGESRV_MAX_FLOWS_PER_PEER: '1',
      };
      ({ server, notify } = await startNotified(
        s.l,
        {
          allowInternet: false,
          args: [
            ...(asUnit ? [] : ['--config-file', settings]),
            '--nat',
            mode,
            '--admin-token-file',
            adminFile,
            '--metrics-listen',
            METRICS(),
            '--max-flows-per-peer',
            '64',
            '--dns-upstream',
            `${INET4}:5399`,
          ],
          env: asUnit ? unitEnv : {},
        },
        { ready: true },
      ));
      await addServer(s.l, 'lab');
    });

    /** nat-probe.mjs once per argument list, all in one cage of `who`: one output line per probe. */
    const probesAs = async (who: SrvLab, ...runs: string[][]): Promise<string[]> =>
      // The kernel NAT's reset answers the SYN itself (the connect is refused); the userspace NAT's follows an accept.
      (await natProbes(who, server!, ...runs)).map((line) => (mode === 'kernel' && line === 'connect-error ECONNREFUSED' ? 'reset' : line));
    const probes = (...runs: string[][]) => probesAs(s.l, ...runs);
    const viaCli = () =>
      s.l.cli.run(process.execPath, [SRV_BIN, 'reload', '--api', `http://${s.l.srvAddr}:8443`, '--admin-token-file', adminFile], {
        env: { PATH: process.env.PATH },
      });

    async function sighup(): Promise<void> {
      const from = notify!.got.length;
      process.kill(server!.pid!, 'SIGHUP');
      const reloading = await notify!.next(server!, 'RELOADING=1', from);
      await notify!.next(server!, 'READY=1', reloading.index + 1);
    }

    it('holds the flag over the file at start: a peer opens two flows although the file says one', async () => {
      const r = await runCaged(s.l, ['sh', '-c', `${process.execPath} -e "${HELD}"`]);
      assert.equal(r.code, 0, `${r.stderr}\n${server!.describe()}`);
      assert.equal(r.stdout.trim(), 'both', server!.describe());
    });

    it('moves --allow-dest from the internet to the LAN on SIGHUP: new flows follow it, a download under way arrives whole', async () => {
      assert.deepEqual(await probes(['tcp', LAN_HOST, '8080'], ['tcp', INET4, '8080']), ['reset', 'data HTTP/1.1 200 OK']);
      assert.doesNotMatch(server!.output(), / debug: /, 'debug lines before the file asked for them');
      let finished = false;
      const download = runCaged(s.l, ['sh', '-c', `curl -sS --limit-rate ${RATE} --max-time 150 http://${INET4}:8080/big | sha256sum`], {
        timeoutMs: 170_000,
      }).finally(() => {
        finished = true;
      });
      // Every peer so far, summed: the cages of the tests before are registered too.
      const sent = async () => {
        const text = (await s.l.cli.runOrThrow('curl', ['-sS', '--max-time', '5', `http://${METRICS()}/metrics`])).stdout;
        return [...text.matchAll(/^wireguard_peer_transmit_bytes_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      };
      await waitFor(async () => (await sent()) >= 1 << 20, {
        what: 'the download to be under way',
        timeoutMs: 30_000,
        intervalMs: 100,
        describe: () => server!.describe(),
      });

      writeSettings(settings, [
        'WIRECAGESRV_ALLOW_DEST=192.168.99.0/24',
        'WIRECAGESRV_REGISTER_RATE=100',
        'WIRECAGESRV_LOG_LEVEL=debug',
        'WIRECAGESRV_MAX_FLOWS_PER_PEER=1',
      ]);
      await sighup();
      assert.match(server!.output(), /reloaded \(SIGHUP\): auth-token, admin-token, settings; changed: allow-dest, log-level$/m);
      assert.equal(finished, false, 'the download ended before the reload was over: it proves nothing (make it longer)');
      // Probed while the download runs, from another user's cage: a cage of this user would share the
      // download's client key, so its peer and WireGuard session, and its handshake would take the download's
      // packets (adversarial/nat-holes.test.ts). Its flow to the download's own host and port is refused.
      const dir = await s.lab.tempDir();
      const other = { ...s.l, env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') } };
      await addServer(other, 'lab');
      assert.deepEqual(await probesAs(other, ['tcp', LAN_HOST, '8080'], ['tcp', INET4, '8080']), ['data HTTP/1.1 200 OK', 'reset']);
      assert.equal(finished, false, "the download ended before the other cage's probes: it proves nothing (make it longer)");
      const r = await download;
      assert.equal(r.code, 0, `${r.stderr}\n${server!.describe()}`);
      assert.equal(r.stdout.split(/\s/)[0], bigSha256, 'the flow the new policy forbids was cut or damaged');
      // Debug lines from then on: the settings in force, and (userspace) the refused flow.
      const log = server!.output();
      assert.match(log, / debug: settings in force: \{"allowLan":false,"allowDest":\["192\.168\.99\.0\/24"\],"logLevel":"debug"/);
      if (mode === 'userspace') assert.match(log, / debug: NAT tcp .*10\.99\.1\.2.*refused \(private\)/);
    });

    it('refuses a file with a bad line (422, file:line and the name) and keeps the settings in force', async () => {
      writeSettings(settings, ['WIRECAGESRV_ALLOW_DEST=10.99.1.0/24', 'WIRECAGESRV_ALOW_LAN=1']);
      const r = await viaCli();
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(`HTTP 422: ${settings.replace(/[.\\/]/g, '\\$&')}:2: WIRECAGESRV_ALOW_LAN is no setting of wirecagesrv up`),
      );
      writeSettings(settings, ['WIRECAGESRV_ALLOW_DEST=10.99.1.0/24', 'WIRECAGESRV_MAX_FLOWS=0']);
      const zero = await viaCli();
      assert.equal(zero.code, 1, zero.stdout);
      assert.match(
        zero.stderr,
        /HTTP 422: \S+wirecagesrv\.env:2: WIRECAGESRV_MAX_FLOWS: expected an integer greater than or equal to 1 but received: 0/,
      );
      assert.match(
        server!.output(),
        /reload \(POST \/v1\/reload\) refused, serving on with what was loaded before: \S+:2: WIRECAGESRV_MAX_FLOWS/,
      );
      // Still the LAN open and the internet refused, as the last good file said.
      assert.deepEqual(await probes(['tcp', LAN_HOST, '8080'], ['tcp', INET4, '8080']), ['data HTTP/1.1 200 OK', 'reset']);
    });

    it('answers `wirecagesrv reload` with what a flag pins and what needs a restart', async () => {
      writeSettings(settings, [
        'WIRECAGESRV_ALLOW_DEST=192.168.99.0/24',
        'WIRECAGESRV_REGISTER_RATE=100',
        'WIRECAGESRV_MAX_FLOWS_PER_PEER=1',
        'WIRECAGESRV_MTU=1400',
      ]);
      const r = await viaCli();
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${server!.describe()}`);
      assert.match(r.stdout, /^reloaded: auth-token, admin-token, settings; changed: log-level$/m);
      assert.match(
        r.stdout,
        /^not reloaded: WIRECAGESRV_MAX_FLOWS_PER_PEER \(\S+:3\) is not applied: --max-flows-per-peer is pinned by a flag, which wins over the file$/m,
      );
      assert.match(
        r.stdout,
        /^not reloaded: WIRECAGESRV_MTU changed in \S+ since the start: it is read at start only and needs a restart$/m,
      );
      // The log level went back to the default with its line: no debug line after this reload's own.
      const from = server!.output().length;
      assert.deepEqual(await probes(['tcp', LAN_HOST, '8080']), ['data HTTP/1.1 200 OK']);
      assert.doesNotMatch(server!.output().slice(from), / debug: /);
    });

    it(
      mode === 'userspace' ? 'lowers --max-flows live for new flows' : "keeps the kernel NAT's --max-flows, and says it needs a restart",
      async () => {
        writeSettings(settings, ['WIRECAGESRV_ALLOW_DEST=10.99.1.0/24', 'WIRECAGESRV_REGISTER_RATE=100', 'WIRECAGESRV_MAX_FLOWS=1']);
        const r = await viaCli();
        assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${server!.describe()}`);
        if (mode === 'userspace') {
          assert.match(r.stdout, /^reloaded: .*; changed: allow-dest, max-flows$/m);
        } else {
          assert.match(r.stdout, /^reloaded: .*; changed: allow-dest$/m);
          assert.match(
            r.stdout,
            /^not reloaded: --max-flows and --max-flows-per-peer of the kernel NAT are counted in nftables sets made at start: they need a restart$/m,
          );
        }
        if (mode === 'userspace') {
          // A limit of 1 counts every flow: the earlier tests' last ones must have ended (the relay sees both sides close).
          const flows = () => scrapeMetric(s.l.srv, METRICS(), /^wirecagesrv_nat_active_flows\{[^}]*\} (\d+)$/m);
          await waitFor(async () => (await flows()) === 0, { what: "the earlier tests' NAT flows to end", timeoutMs: 60_000 });
        }
        const held = await runCaged(s.l, ['sh', '-c', `${process.execPath} -e "${HELD}"`]);
        assert.equal(held.code, 0, `${held.stderr}\n${server!.describe()}`);
        assert.equal(held.stdout.trim(), mode === 'userspace' ? 'limited' : 'both', server!.describe());
      },
    );
  });
}

describe('wirecagesrv up --config-file refuses a bad file before it starts', function () {
  this.timeout(30_000);
  const lab = new Lab();
  after(() => lab.teardown());

  const cases: { what: string; lines: string[]; err: RegExp }[] = [
    {
      what: 'a name that is no setting',
      lines: ['# ok', 'WIRECAGESRV_NOPE=1'],
      err: /:2: WIRECAGESRV_NOPE is no setting of wirecagesrv up/,
    },
    { what: 'a line that is not NAME=value', lines: ['WIRECAGESRV_LOG_LEVEL=info', 'export WIRECAGESRV_MTU'], err: /:2: not NAME=value/ },
    {
      what: 'text after a closing quote',
      lines: ['WIRECAGESRV_ALLOW_DEST="10.0.0.0/8" x'],
      err: /:1: WIRECAGESRV_ALLOW_DEST: text after the closing quote/,
    },
    {
      what: 'a value oclif refuses as it refuses the variable',
      lines: ['WIRECAGESRV_MAX_FLOWS=0'],
      err: /bad\.env:1: WIRECAGESRV_MAX_FLOWS: Parsing --max-flows Expected an integer greater than or equal to 1 but received: 0/,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.what}`, async () => {
      const dir = await lab.tempDir();
      const file = join(dir, 'bad.env');
      writeSettings(file, c.lines);
      const r = await run(process.execPath, [SRV_BIN, 'up', '--config-file', file, '--state', join(dir, 'registry.db')], {
        env: { PATH: process.env.PATH, HOME: dir },
        timeoutMs: 20_000,
      });
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, c.err);
    });
  }
});
