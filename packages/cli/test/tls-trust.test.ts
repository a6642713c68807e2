// add-server --ca-file and the certificate pin, against a local HTTPS API with
// certificates openssl makes for the test (a tiny CA, leaves it signs, a
// self-signed leaf): what a CA file may hold, registration trusting only that
// CA, the leaf's fingerprint pinned on the first registration and refused
// when it changes before anything is sent (also for port-forward requests),
// a certificate the public CAs do not vouch for refused with the way to trust
// it, and add-server / remove-server keeping the CA's copy.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import { configForServer } from '../src/servers/register.js';
import { createForward } from '../src/servers/publish.js';
import { caCertificates } from '../src/servers/tls-trust.js';
import { TlsTrustError } from '../src/servers/http.js';
import { CertificatePinMismatchError, type LeaseState } from '../src/servers/lease-state.js';
import { labCa, labLeaf, type LabCert } from '@wirecage/netns/lab';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const SERVER_KEY = keyToBase64(publicKeyOf(generatePrivateKey()));

describe('--ca-file and the pinned certificate', function () {
  this.timeout(30_000);
  let pki: string;
  let ca: LabCert;
  let leafA: LabCert;
  let leafB: LabCert;
  let selfSigned: LabCert;
  let wrongName: LabCert;
  let server: Server;
  let url: string;
  let requests: number;
  let dir: string;
  let savedXdg: string | undefined;

  const serve = (c: LabCert) => server.setSecureContext({ cert: c.pem, key: readFileSync(c.key) });
  const leaseFile = () => join(dir, 'wirecage', 'keys', 'lab.lease.json');
  const readLease = () => JSON.parse(readFileSync(leaseFile(), 'utf8')) as LeaseState;
  /** config.toml naming `lab` at the local API, with a ca_file (relative, as add-server writes it) holding `caPem`. */
  const configure = (caPem: string | null) => {
    mkdirSync(join(dir, 'wirecage', 'ca'), { recursive: true, mode: 0o700 });
    if (caPem !== null) writeFileSync(join(dir, 'wirecage', 'ca', 'lab.pem'), caPem, { mode: 0o600 });
    writeFileSync(
      join(dir, 'wirecage', 'config.toml'),
      `version = 1\n\n[servers.lab]\napi_url = "${url}"\ntoken = "T"\n${caPem !== null ? 'ca_file = "ca/lab.pem"\n' : ''}`,
      { mode: 0o600 },
    );
  };
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: dir, WIRECAGE_TOKEN: '' } });
  // The API runs in this process: `run` must not block its event loop.
  const cliAsync = (args: string[]) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, XDG_CONFIG_HOME: dir, WIRECAGE_TOKEN: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (c) => (stderr += c));
      p.on('close', (status) => resolve({ status, stderr }));
    });

  before(async () => {
    pki = mkdtempSync(join(tmpdir(), 'wirecage-pki-'));
    ca = labCa(pki, 'lab-ca');
    leafA = labLeaf(pki, 'leaf-a', 'IP:127.0.0.1', ca);
    leafB = labLeaf(pki, 'leaf-b', 'IP:127.0.0.1', ca);
    selfSigned = labLeaf(pki, 'self-signed', 'IP:127.0.0.1');
    wrongName = labLeaf(pki, 'wrong-name', 'DNS:other.example', ca);
    server = createServer({ cert: leafA.pem, key: readFileSync(leafA.key) }, (req, res) => {
      req.resume();
      req.on('end', () => {
        requests++;
        const answer = {
          client_address: '10.200.100.2/24',
          server_public_key: SERVER_KEY,
          server_endpoint: '127.0.0.1:51820',
          dns: ['10.200.100.1'],
          lease_expires: new Date(Date.now() + 3600_000).toISOString(),
        };
        res.writeHead(req.url === '/v1/register' ? 200 : 201, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.close();
    rmSync(pki, { recursive: true, force: true });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-tls-'));
    savedXdg = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = dir;
    requests = 0;
    serve(leafA);
  });
  afterEach(() => {
    if (savedXdg === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = savedXdg;
    rmSync(dir, { recursive: true, force: true });
  });

  it('a CA file holds certificates only: a key, no certificate or a broken one is refused', () => {
    assert.equal(caCertificates(`junk\n${ca.pem}more junk\n${leafA.pem}`, 'f').subjects.length, 2);
    assert.throws(() => caCertificates(readFileSync(ca.key, 'utf8'), '--ca-file k.pem'), {
      message: /^--ca-file k\.pem holds a private key: give the certificate of the CA/,
    });
    assert.throws(() => caCertificates(`${ca.pem}${readFileSync(ca.key, 'utf8')}`, 'f'), /holds a private key/);
    assert.throws(() => caCertificates('', 'f'), { message: 'f holds no PEM certificate (-----BEGIN CERTIFICATE-----)' });
    assert.throws(() => caCertificates('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'f'), {
      message: /^f: certificate 1 cannot be read/,
    });
  });

  it("registers trusting the CA file only, pins the leaf's fingerprint, and refuses another leaf of the same CA before sending anything", async () => {
    configure(ca.pem);
    const first = await configForServer('lab');
    assert.equal(requests, 1);
    assert.equal(readLease().pinned_tls_certificate_sha256, leafA.fingerprint, 'the fingerprint openssl prints');
    assert.equal(first.api.tls?.pinnedCertificate, leafA.fingerprint);
    // Reused without a connection.
    await configForServer('lab');
    assert.equal(requests, 1);

    serve(leafB); // renewed, or someone else's certificate from the same CA
    const stored = readFileSync(leaseFile(), 'utf8');
    await assert.rejects(configForServer('lab', { now: () => Date.now() + 1800_000 }), (err: Error) => {
      assert.ok(err instanceof CertificatePinMismatchError);
      assert.ok(err.name.endsWith('Error'), 'run exits 125 for it');
      assert.equal(
        err.message,
        `${url} presented a TLS certificate with the SHA-256 fingerprint ${leafB.fingerprint}, but the certificate pinned for "lab" (in ${leaseFile()}) is ${leafA.fingerprint}: ` +
          "someone may be impersonating the server, so nothing was sent (not even the token). If the server's certificate really changed (renewed, or a new key), " +
          "check the new fingerprint with the server's admin (openssl x509 -noout -fingerprint -sha256 -in CERT) and re-pin with: " +
          `wirecage add-server lab ${url} --ca-file CA.pem --replace`,
      );
      return true;
    });
    assert.equal(requests, 1, 'no request reached the server');
    assert.equal(readFileSync(leaseFile(), 'utf8'), stored, 'nothing stored, the pin kept');
    // Port forwards go through the same check.
    await assert.rejects(createForward(first.api, { protocol: 'tcp', publicPort: 28080, targetPort: 80 }), CertificatePinMismatchError);
    assert.equal(requests, 1);

    serve(leafA);
    const back = await configForServer('lab', { now: () => Date.now() + 1800_000 });
    assert.equal(requests, 2);
    await createForward(back.api, { protocol: 'tcp', publicPort: 28080, targetPort: 80 });
    assert.equal(requests, 3);
  });

  it('`run NAME` exits 125 on a changed certificate, naming both fingerprints', async () => {
    configure(ca.pem);
    await configForServer('lab');
    const s = readLease();
    s.registered_at = new Date(Date.now() - 3600_000).toISOString(); // past half its lease: the run registers
    writeFileSync(leaseFile(), JSON.stringify(s), { mode: 0o600 });
    serve(leafB);
    const r = await cliAsync(['run', 'lab', '--', 'true']);
    assert.equal(r.status, 125);
    assert.ok(
      r.stderr.startsWith(
        `wirecage: ${url} presented a TLS certificate with the SHA-256 fingerprint ${leafB.fingerprint}, but the certificate pinned for "lab"`,
      ),
      r.stderr,
    );
    assert.ok(r.stderr.includes(`is ${leafA.fingerprint}: someone may be impersonating the server`), r.stderr);
    assert.equal(requests, 1);
  });

  it('a self-signed certificate given as --ca-file is trusted and pinned', async () => {
    serve(selfSigned);
    configure(selfSigned.pem);
    await configForServer('lab');
    assert.equal(readLease().pinned_tls_certificate_sha256, selfSigned.fingerprint);
  });

  it('refuses, before sending anything, a certificate the public CAs do not vouch for, or one for another name; saying how to trust it', async () => {
    serve(selfSigned);
    configure(null);
    await assert.rejects(configForServer('lab'), (err: Error) => {
      assert.ok(err instanceof TlsTrustError);
      assert.match(
        err.message,
        new RegExp(
          `^cannot register with ${url}/v1/register: the server's TLS certificate is not trusted \\(DEPTH_ZERO_SELF_SIGNED_CERT: self[- ]signed certificate\\), so nothing was sent; for a self-signed certificate or a private CA: wirecage add-server lab ${url} --ca-file CA\\.pem --replace$`,
        ),
      );
      return true;
    });
    assert.ok(!existsSync(leaseFile()));
    serve(wrongName);
    configure(ca.pem);
    await assert.rejects(configForServer('lab'), (err: Error) => {
      assert.ok(err instanceof TlsTrustError);
      assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.match(err.message, /the certificate must be signed by the CA given to add-server --ca-file/);
      return true;
    });
    serve(leafA);
    configure(selfSigned.pem);
    await assert.rejects(configForServer('lab'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    assert.equal(requests, 0);
  });

  it('a CA copy gone missing is a clear error, naming the file and the fix', async () => {
    configure(ca.pem);
    rmSync(join(dir, 'wirecage', 'ca', 'lab.pem'));
    await assert.rejects(configForServer('lab'), {
      message: `the CA file of server "lab" (ca_file in ${join(dir, 'wirecage', 'config.toml')}) ${join(dir, 'wirecage', 'ca', 'lab.pem')} is missing: add the server again with: wirecage add-server lab ${url} --ca-file CA.pem --replace`,
    });
  });

  it('add-server --ca-file copies the certificates (0600) and names them in config.toml; --replace without it and remove-server drop the copy', () => {
    const copy = join(dir, 'wirecage', 'ca', 'lab.pem');
    const a = cli(['add-server', 'lab', url, '--token', 'T', '--ca-file', ca.cert]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(a.stdout, `added lab (${url}) in ${join(dir, 'wirecage', 'config.toml')}, trusting the CA in ${copy}\n`);
    assert.equal(readFileSync(copy, 'utf8'), ca.pem);
    assert.equal(statSync(copy).mode & 0o777, 0o600);
    assert.match(
      readFileSync(join(dir, 'wirecage', 'config.toml'), 'utf8'),
      /\[servers\.lab\]\napi_url = "https:\/\/127\.0\.0\.1:\d+"\ntoken = "T"\nca_file = "ca\/lab\.pem"\n/,
    );

    const key = cli(['add-server', 'other', url, '--token', 'T', '--ca-file', ca.key]);
    assert.equal(key.status, 1);
    assert.equal(
      key.stderr,
      `wirecage: --ca-file ${ca.key} holds a private key: give the certificate of the CA (or the server's self-signed certificate), never a key\n`,
    );
    const missing = cli(['add-server', 'other', url, '--token', 'T', '--ca-file', join(pki, 'nope.pem')]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `wirecage: --ca-file ${join(pki, 'nope.pem')} is missing\n`);
    const plain = cli(['add-server', 'other', 'http://127.0.0.1:8443', '--token', 'T', '--ca-file', ca.cert]);
    assert.equal(plain.status, 2);
    assert.equal(
      plain.stderr,
      '--ca-file is for an https:// URL: http://127.0.0.1:8443 has no certificate to check\n'.replace(/^/, 'wirecage: '),
    );
    assert.ok(!existsSync(join(dir, 'wirecage', 'ca', 'other.pem')));

    assert.equal(cli(['add-server', 'lab', url, '--token', 'T', '--replace']).status, 0);
    assert.ok(!existsSync(copy));
    assert.doesNotMatch(readFileSync(join(dir, 'wirecage', 'config.toml'), 'utf8'), /ca_file/);
    assert.equal(cli(['add-server', 'lab', url, '--token', 'T', '--ca-file', selfSigned.cert, '--replace']).status, 0);
    assert.equal(readFileSync(copy, 'utf8'), selfSigned.pem);
    const rm = cli(['remove-server', 'lab']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.ok(!existsSync(copy));
  });
});
