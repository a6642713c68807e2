// `wirecage run NAME` against a real wirecagesrv in a lab (tests/lib/srv-lab.ts;
// its internet and LAN are not used here): add-server writes config.toml, run
// registers a key made on first use and completes a handshake (a completed
// handshake, which `run` waits for before starting the command, is the proof
// here; traffic through the server's NAT is tests/server/nat.test.ts's). A
// second run reuses the key and gets the same address; a wrong token gives
// exit 125.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import { Lab, nsRun } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { SRV_TOKEN as TOKEN, srvLab, startWirecagesrv, type SrvLab } from '../lib/srv-lab.js';
import { WIRECAGE_BIN } from '../lib/cage.js';

describe('wirecage run NAME with wirecagesrv', function () {
  this.timeout(90_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let srvAddr: string;
  let dir: string;
  let server: LabProcess;

  const wirecage = (args: string[]) => run(process.execPath, [WIRECAGE_BIN, ...args], { env: l.env, timeoutMs: 20_000 });
  const caged = (args: string[]) => nsRun(l.cli, process.execPath, [WIRECAGE_BIN, 'run', ...args], { env: l.env, timeoutMs: 30_000 });

  before(async () => {
    l = await srvLab(lab);
    ({ srvAddr, dir } = l);
    server = await startWirecagesrv(l);
  });

  let firstAddrs: string;

  it('add-server, then `run lab -- CMD` registers, handshakes and runs the command', async () => {
    const add = await wirecage(['add-server', 'lab', `http://${srvAddr}:8443`, '--insecure-http', '--token', TOKEN]);
    assert.equal(add.code, 0, add.stderr);
    const conf = join(dir, 'config', 'wirecage', 'config.toml');
    assert.equal((await stat(conf)).mode & 0o777, 0o600);
    assert.match(
      await readFile(conf, 'utf8'),
      new RegExp(`\\[servers\\.lab\\]\\napi_url = "http://${srvAddr.replace(/\./g, '\\.')}:8443"\\ntoken = "${TOKEN}"`),
    );

    const ok = await caged(['lab', '--wait-handshake', '10', '--', 'true']);
    assert.equal(ok.code, 0, `${ok.stderr}\n${server.describe()}`);
    const keyFile = join(dir, 'config', 'wirecage', 'keys', 'lab.key');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);

    const r = await caged([
      'lab',
      '--',
      'sh',
      '-c',
      `ip -o addr show dev wirecage | awk '{print $4}'; cat ${keyFile} ${conf} 2>/dev/null | wc -c`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.pop()!.trim(), '0', 'the key file and config.toml must be hidden inside the cage');
    firstAddrs = lines
      .filter((line) => !line.startsWith('fe80'))
      .sort()
      .join(',');
    assert.equal(firstAddrs, '10.200.100.2/32,fd7a:5e:60::2/128', 'the first addresses of the pools (SUBNET6 is fd7a:5e:60::/64)');
  });

  it('a second run reuses the key and gets the same address', async () => {
    const keyFile = join(dir, 'config', 'wirecage', 'keys', 'lab.key');
    const key = await readFile(keyFile, 'utf8');
    const r = await caged(['lab', '--', 'ip', '-o', 'addr', 'show', 'dev', 'wirecage']);
    assert.equal(r.code, 0, r.stderr);
    const addrs = r.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[3]!)
      .filter((a) => !a.startsWith('fe80'))
      .sort()
      .join(',');
    assert.equal(addrs, firstAddrs);
    assert.equal(await readFile(keyFile, 'utf8'), key);
  });

  it("a wrong token exits 125 with the server's 401 error", async () => {
    assert.equal(
      (await wirecage(['add-server', 'wrong', `http://${srvAddr}:8443`, '--insecure-http', '--token', 'not-the-token'])).code,
      0,
    );
    const r = await caged(['wrong', '--', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stderr, `wirecage: http://${srvAddr}:8443/v1/register refused the registration: HTTP 401: invalid token\n`);
    server.assertRunning();
  });
});
