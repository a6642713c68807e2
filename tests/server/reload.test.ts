// Reloading a real `wirecagesrv up` in the lab (SIGHUP, and `wirecagesrv
// reload` over the admin API): a download through a cage carries on across
// three reloads and arrives SHA-256-identical; a new certificate is what the
// next TLS handshake sees; a token taken out of its file is refused and the
// new one accepted; a certificate that cannot serve refuses the reload and
// the old one keeps serving. Each reload is waited for by its answer or its
// RELOADING=1 ... READY=1 pair on $NOTIFY_SOCKET, never by time.
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labCa, labLeaf, type LabCert } from '@wirecage/netns/lab';
import { NotifyListener } from '../lib/notify-listener.js';
import type { LabProcess } from '../lib/process.js';
import { INET4, SRV_BIN, SRV_TOKEN, addServer, runCaged, scrapeMetric, startWirecagesrvTls } from '../lib/srv-lab.js';
import { startInternet } from '../lib/srv-internet.js';
import { startNotified } from '../lib/srv-notified.js';
import { apiRequest } from '../lib/srv-client.js';
import { srvSuite } from '../lib/srv-suite.js';
import { waitFor } from '../lib/wait.js';
import { generateKeyPair, writeSecretFile } from '../lib/wg.js';

const ADMIN_TOKEN = 'lab-admin-token-reload-0123456789';
// 24 MiB at 2 MiB/s: about 12 s whatever the machine, far longer than three reloads take.
const BIG = 24 * 1024 * 1024;
const RATE = '2M';
const NEW_TOKEN = 'lab-token-after-reload-9876543210';

/** Writes `text` to `file` as an operator's tool would: a new file renamed over the old one. */
function replaceFile(file: string, text: string | Buffer): void {
  writeFileSync(`${file}.new`, text, { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

describe('wirecagesrv reload keeps NAT flows and WireGuard sessions', function () {
  this.timeout(180_000);
  const s = srvSuite();
  let server: LabProcess | undefined;
  let notify: NotifyListener | undefined;
  let adminFile: string;
  let bigSha256: string;
  const METRICS = () => `${s.l.srvAddr}:9586`;

  before(async () => {
    ({ bigSha256 } = await startInternet(s.l.inet, INET4, BIG));
    // The admin token as systemd's LoadCredential= hands it over; `wirecagesrv reload` reads the same file.
    const credentials = await s.lab.tempDir();
    adminFile = await writeSecretFile(credentials, 'admin-token', `${ADMIN_TOKEN}\n`);
    ({ server, notify } = await startNotified(
      s.l,
      { args: ['--metrics-listen', METRICS()], env: { CREDENTIALS_DIRECTORY: credentials } },
      { ready: true },
    ));
    await addServer(s.l, 'lab');
  });

  const reloadCommand = (tokenFile: string) =>
    s.l.cli.run(process.execPath, [SRV_BIN, 'reload', '--api', `http://${s.l.srvAddr}:8443`, '--admin-token-file', tokenFile], {
      env: { PATH: process.env.PATH },
    });

  /** One reload, over the API or by SIGHUP, waited for by its RELOADING=1 and the READY=1 after it. */
  async function reload(how: 'SIGHUP' | 'api'): Promise<void> {
    const from = notify!.got.length;
    if (how === 'SIGHUP') {
      process.kill(server!.pid!, 'SIGHUP');
    } else {
      const r = await reloadCommand(adminFile);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${server!.describe()}`);
      assert.match(r.stdout, /^reloaded: auth-token, admin-token; changed: nothing$/m);
      assert.match(r.stdout, /^not reloaded: flags and environment variables are read at start only/m);
    }
    const reloading = await notify!.next(server!, 'RELOADING=1', from);
    assert.match(reloading.text, /^MONOTONIC_USEC=\d+$/m);
    await notify!.next(server!, 'READY=1', reloading.index + 1);
  }

  it('carries a download through a cage across SIGHUP, SIGHUP and `wirecagesrv reload`: SHA-256-identical', async () => {
    let finished = false;
    const download = runCaged(s.l, ['sh', '-c', `curl -sS --limit-rate ${RATE} --max-time 150 http://${INET4}:8080/big | sha256sum`], {
      timeoutMs: 170_000,
    }).finally(() => {
      finished = true;
    });
    // The download is under way before the first reload: a MiB sent to the cage already (nothing else sends that much).
    const sent = () => scrapeMetric(s.l.cli, METRICS(), /^wireguard_peer_transmit_bytes_total\{[^}]*\} (\d+)$/m).catch(() => 0); // no series before the cage registers
    await waitFor(async () => (await sent()) >= 1 << 20, {
      what: 'the download to be under way',
      timeoutMs: 30_000,
      intervalMs: 100,
      describe: () => server!.describe(),
    });
    for (const how of ['SIGHUP', 'SIGHUP', 'api'] as const) {
      await reload(how);
      assert.equal(finished, false, `the download ended before the ${how} reload was over: it proves nothing (make it longer)`);
    }
    const r = await download;
    assert.equal(r.code, 0, `${r.stderr}\n${server!.describe()}`);
    assert.equal(r.stdout.split(/\s/)[0], bigSha256);
    server!.assertRunning();
    const log = server!.output();
    assert.equal(log.match(/reloaded \(SIGHUP\): auth-token, admin-token/g)?.length, 2, log);
    assert.match(log, /reloaded \(POST \/v1\/reload\): auth-token, admin-token/);
  });

  it('refuses `wirecagesrv reload` with a token other than the admin token (401)', async () => {
    const wrong = await writeSecretFile(s.l.dir, 'wrong-admin', 'not-the-admin-token-0123456789\n');
    const r = await reloadCommand(wrong);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /refused to reload: HTTP 401: invalid token: reloading needs the admin token/);
  });

  it('takes a new admin token from its credential file on SIGHUP, and refuses the old one from then on', async () => {
    const old = await writeSecretFile(s.l.dir, 'old-admin', `${ADMIN_TOKEN}\n`);
    replaceFile(adminFile, 'lab-admin-token-rotated-9876543210\n');
    await reload('SIGHUP');
    const refused = await reloadCommand(old);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, /HTTP 401/);
    const r = await reloadCommand(adminFile);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(server!.output(), /reloaded \(SIGHUP\): auth-token, admin-token; changed: admin-token/);
  });
});

describe('wirecagesrv reload serves a new certificate and new tokens, and refuses files that cannot serve', function () {
  this.timeout(120_000);
  const s = srvSuite();
  let server: LabProcess | undefined;
  let ca: LabCert;
  let first: LabCert;
  let second: LabCert;
  let certFile: string;
  let keyFile: string;
  let adminFile: string;
  let dir: string;

  before(async () => {
    dir = s.l.dir;
    ca = labCa(dir, 'ca');
    first = labLeaf(dir, 'first', `IP:${s.l.srvAddr}`, ca);
    second = labLeaf(dir, 'second', `IP:${s.l.srvAddr}`, ca);
    // The files the server is given, replaced in place later.
    certFile = join(dir, 'tls.pem');
    keyFile = join(dir, 'tls.key');
    copyFileSync(first.cert, certFile);
    copyFileSync(first.key, keyFile);
    adminFile = await writeSecretFile(dir, 'admin-token', `${ADMIN_TOKEN}\n`);
    server = await startWirecagesrvTls(s.l, { cert: certFile, key: keyFile }, ca.cert, {
      args: ['--admin-token-file', adminFile],
    });
  });

  /** The SHA-256 fingerprint of the certificate a fresh TLS handshake with the API gets. */
  async function served(): Promise<string> {
    const r = await s.l.cli.runOrThrow('sh', [
      '-c',
      `openssl s_client -connect ${s.l.srvAddr}:8443 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`,
    ]);
    return r.stdout.trim().replace(/^[^=]*=/, '');
  }

  async function reload(): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return s.l.cli.run(
      process.execPath,
      [SRV_BIN, 'reload', '--api', `https://${s.l.srvAddr}:8443`, '--ca-file', ca.cert, '--admin-token-file', adminFile],
      { env: { PATH: process.env.PATH } },
    );
  }

  /** POST /v1/register with `token` for a fresh key: the HTTP status. */
  async function register(token: string): Promise<number> {
    const key = await generateKeyPair(dir, `client-${Math.random().toString(36).slice(2, 8)}`);
    const at = { base: `https://${s.l.srvAddr}:8443`, curl: ['--cacert', ca.cert] };
    return (await apiRequest(s.l, 'POST', '/v1/register', [`Authorization: Bearer ${token}`], { client_public_key: key.publicKey }, at))
      .status;
  }

  it('serves the new certificate to the next handshake, and takes the new registration token in place of the old', async () => {
    assert.equal(await served(), first.fingerprint);
    assert.equal(await register(SRV_TOKEN), 200);
    // Key first, then certificate: the pair is whole only after both, which is when the reload comes.
    replaceFile(keyFile, await readFile(second.key));
    replaceFile(certFile, await readFile(second.cert));
    replaceFile(s.l.tokenFile, `${NEW_TOKEN}\n`);
    const r = await reload();
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${server!.describe()}`);
    assert.match(r.stdout, /^reloaded: tls, auth-token, admin-token; changed: auth-token$/m);
    assert.equal(await served(), second.fingerprint);
    assert.equal(await register(SRV_TOKEN), 401, 'the token taken out of the file still registers');
    assert.equal(await register(NEW_TOKEN), 200);
  });

  const refusals: { what: string; spoil: () => Promise<void>; reason: RegExp }[] = [
    {
      what: 'a certificate file that is not PEM',
      spoil: () => Promise.resolve(replaceFile(certFile, 'not a certificate\n')),
      reason: /the TLS certificate \S+tls\.pem and key \S+tls\.key cannot be used: /,
    },
    {
      what: 'a certificate of another key',
      spoil: async () => replaceFile(certFile, await readFile(first.cert)),
      reason: /cannot be used: .*key values mismatch/,
    },
    {
      what: 'an empty token file',
      spoil: () => Promise.resolve(replaceFile(s.l.tokenFile, '\n')),
      reason: /the registration token is empty/,
    },
  ];
  for (const c of refusals) {
    it(`refuses the reload for ${c.what}, saying so; the certificate and tokens served before keep serving`, async () => {
      const [cert, token] = [await readFile(certFile), await readFile(s.l.tokenFile)];
      try {
        await c.spoil();
        const r = await reload();
        assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /refused to reload: HTTP 422: /);
        assert.match(r.stderr, c.reason);
        assert.match(server!.output(), /reload \(POST \/v1\/reload\) refused, serving on with what was loaded before: /);
        assert.equal(await served(), second.fingerprint);
        assert.equal(await register(NEW_TOKEN), 200);
      } finally {
        replaceFile(certFile, cert);
        replaceFile(s.l.tokenFile, token);
      }
    });
  }
});
