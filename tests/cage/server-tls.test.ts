// `wirecage add-server --ca-file` against a real `wirecagesrv up --tls-cert
// --tls-key` in a lab (tests/lib/srv-lab.ts; its internet and LAN are not
// used), with certificates openssl makes here: a tiny CA and two server
// certificates it signs, and a self-signed one. With --ca-file the run
// registers over HTTPS and pins the certificate's fingerprint; without it the
// certificate is not trusted (125, saying how to trust it, nothing
// registered); another certificate of the same CA is refused (125, both
// fingerprints) with no WireGuard packet sent, until `add-server --replace`
// re-pins; a self-signed certificate given as --ca-file is trusted; an
// untrusted certificate on a later registration leaves the stored answer
// standing in, with a warning; and when the server forgot the client, stage 2
// registers again within the run over HTTPS, with the same CA and pin.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { run } from '../lib/exec.js';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { labCa, labLeaf, type LabCert } from '@wirecage/netns/lab';
import { SRV_BIN, runCaged, srvLab, startWirecagesrvTls, type SrvLab } from '../lib/srv-lab.js';
import { writeSecretFile } from '../lib/wg.js';

interface LeaseFile {
  registered_at: string;
  registration?: { lease_expires: string };
  pinned_server_public_key: string;
  pinned_tls_certificate_sha256?: string;
}

describe('wirecage add-server --ca-file against wirecagesrv over HTTPS (certificate pinning)', function () {
  this.timeout(300_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess | undefined;
  let ca: LabCert;
  let leafA: LabCert;
  let leafB: LabCert;
  let selfSigned: LabCert;
  let url: string;

  const leaseFile = (name: string) => join(l.dir, 'config', 'wirecage', 'keys', `${name}.lease.json`);
  const readLease = async (name: string) => JSON.parse(await readFile(leaseFile(name), 'utf8')) as LeaseFile;
  /** Half the lease past: the next run registers. */
  const ageLease = async (name: string) => {
    const s = await readLease(name);
    const expires = Date.parse(s.registration!.lease_expires);
    s.registered_at = new Date(Date.now() - (expires - Date.now()) - 60_000).toISOString();
    await writeFile(leaseFile(name), JSON.stringify(s), { mode: 0o600 });
  };
  const addServer = (args: string[]) =>
    run(process.execPath, [WIRECAGE_BIN, 'add-server', ...args, '--token-file', l.tokenFile], { env: l.env });
  let adminFile: string;
  const serve = async (cert: LabCert, trust: string) => {
    await server?.stop();
    server = await startWirecagesrvTls(l, cert, trust, { args: ['--admin-token-file', adminFile] });
  };
  const registrations = () => server!.output().match(/registered peer /g)?.length ?? 0;
  const nft = (script: string) => l.srv.runOrThrow('nft', ['-f', '-'], { input: script });

  before(async () => {
    l = await srvLab(lab, { built: ['packages/cli/dist/servers/tls-trust.js'] });
    const pki = await lab.tempDir();
    ca = labCa(pki, 'lab-ca');
    leafA = labLeaf(pki, 'leaf-a', `IP:${l.srvAddr}`, ca);
    leafB = labLeaf(pki, 'leaf-b', `IP:${l.srvAddr}`, ca);
    selfSigned = labLeaf(pki, 'self-signed', `IP:${l.srvAddr}`);
    url = `https://${l.srvAddr}:8443`;
    adminFile = await writeSecretFile(l.dir, 'admin', 'lab-admin-tls-0123456789\n');
    await serve(leafA, ca.cert);
  });
  after(() => server?.stop());

  it("with --ca-file, run NAME registers over HTTPS and pins the certificate's fingerprint next to the server key", async () => {
    const add = await addServer(['lab', url, '--ca-file', ca.cert]);
    assert.equal(add.code, 0, add.stderr);
    const r = await runCaged(l, ['true']);
    assert.equal(r.code, 0, `${r.stderr}\n${server!.describe()}`);
    assert.equal(r.stderr, '');
    const s = await readLease('lab');
    assert.equal(s.pinned_tls_certificate_sha256, leafA.fingerprint, "the fingerprint openssl prints for the server's certificate");
    assert.ok(s.pinned_server_public_key);
    assert.equal(registrations(), 1);
  });

  it('without --ca-file the private CA is not trusted: 125, saying how to trust it, and nothing registered', async () => {
    assert.equal((await addServer(['pub', url])).code, 0);
    const r = await runCaged(l, ['true'], { server: 'pub' });
    assert.equal(r.code, 125, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^wirecage: cannot register with ${url}/v1/register: the server's TLS certificate is not trusted \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE: [^)]+\\), so nothing was sent; for a self-signed certificate or a private CA: wirecage add-server pub ${url} --ca-file CA\\.pem --replace\\n$`,
      ),
    );
    assert.equal(registrations(), 1);
  });

  it('another certificate of the same CA is refused (125, both fingerprints) with no WireGuard packet sent; add-server --replace re-pins', async () => {
    await serve(leafB, ca.cert);
    await nft(
      'table inet lab_tls {\n chain input {\n  type filter hook input priority -10;\n  udp dport 51820 counter name wg\n }\n counter wg {}\n}\n',
    );
    try {
      await ageLease('lab');
      const stored = await readFile(leaseFile('lab'), 'utf8');
      const r = await runCaged(l, ['true']);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(
        r.stderr,
        `wirecage: ${url} presented a TLS certificate with the SHA-256 fingerprint ${leafB.fingerprint}, but the certificate pinned for "lab" (in ${leaseFile('lab')}) is ${leafA.fingerprint}: ` +
          "someone may be impersonating the server, so nothing was sent (not even the token). If the server's certificate really changed (renewed, or a new key), " +
          "check the new fingerprint with the server's admin (openssl x509 -noout -fingerprint -sha256 -in CERT) and re-pin with: " +
          `wirecage add-server lab ${url} --ca-file CA.pem --replace\n`,
      );
      assert.match(
        (await l.srv.runOrThrow('nft', ['list', 'counter', 'inet', 'lab_tls', 'wg'])).stdout,
        /packets 0 bytes 0/,
        'nothing went to its WireGuard port',
      );
      assert.equal(await readFile(leaseFile('lab'), 'utf8'), stored, 'the state and its pins are unchanged');
      assert.equal(registrations(), 0);

      const re = await addServer(['lab', url, '--ca-file', ca.cert, '--replace']);
      assert.equal(re.code, 0, re.stderr);
      const ok = await runCaged(l, ['true']);
      assert.equal(ok.code, 0, `${ok.stderr}\n${server!.describe()}`);
      assert.equal((await readLease('lab')).pinned_tls_certificate_sha256, leafB.fingerprint);
      assert.doesNotMatch(
        (await l.srv.runOrThrow('nft', ['list', 'counter', 'inet', 'lab_tls', 'wg'])).stdout,
        /packets 0 bytes 0/,
        'the counter sees a handshake',
      );
    } finally {
      await nft('delete table inet lab_tls\n');
    }
  });

  it('a self-signed certificate given as --ca-file is trusted and pinned; to a server pinned to the CA it is untrusted, and the stored answer stands in', async () => {
    await serve(selfSigned, selfSigned.cert);
    assert.equal((await addServer(['self', url, '--ca-file', selfSigned.cert])).code, 0);
    const r = await runCaged(l, ['true'], { server: 'self' });
    assert.equal(r.code, 0, `${r.stderr}\n${server!.describe()}`);
    assert.equal((await readLease('self')).pinned_tls_certificate_sha256, selfSigned.fingerprint);

    await ageLease('lab');
    const before = await readLease('lab');
    const lab2 = await runCaged(l, ['true']);
    assert.equal(lab2.code, 0, `${lab2.stderr}\n${server!.describe()}`);
    assert.match(
      lab2.stderr,
      new RegExp(
        `^wirecage: warning: cannot register with ${url}/v1/register: the server's TLS certificate is not trusted \\([A-Z_]+: [^)]+\\), so nothing was sent; the certificate must be signed by the CA given to add-server --ca-file .*; using the registration stored in \\S+lab\\.lease\\.json \\(lease until \\S+\\)\\n$`,
      ),
    );
    assert.deepEqual(await readLease('lab'), before);
  });

  it('when the server forgot the client, stage 2 registers again within the run over HTTPS, with the CA and the pin (a changed certificate refused there too)', async () => {
    await serve(leafB, ca.cert); // the certificate pinned for lab
    // The answer stored by the last test is past half its lease: this run registers, and stores a fresh one.
    const fresh = await runCaged(l, ['true']);
    assert.equal(fresh.code, 0, fresh.stderr);
    const forget = async () => {
      const key = (JSON.parse(await readFile(leaseFile('lab'), 'utf8')) as { client_public_key: string }).client_public_key;
      const rm = await l.cli.run(process.execPath, [SRV_BIN, 'peers', 'remove', key, '--api', url, '--ca-file', ca.cert], {
        env: { PATH: process.env.PATH, HOME: l.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: adminFile },
        timeoutMs: 30_000,
      });
      assert.equal(rm.code, 0, rm.stderr);
    };
    const runLab = () =>
      l.cli.run(process.execPath, [WIRECAGE_BIN, 'run', 'lab', '--wait-handshake', '3', '--', 'true'], { env: l.env, timeoutMs: 60_000 });

    await forget();
    const before = await readLease('lab');
    const ok = await runLab();
    assert.equal(ok.code, 0, `${ok.stderr}\n${server!.describe()}`);
    assert.match(
      ok.stderr,
      new RegExp(
        `^wirecage: warning: no WireGuard handshake with \\S+ within 3 s with the registration stored in \\S+lab\\.lease\\.json \\(has the server forgotten this client\\?\\): registered again with ${url}\\n$`,
      ),
    );
    const after = await readLease('lab');
    assert.ok(after.registration);
    assert.notEqual(after.registered_at, before.registered_at);
    assert.equal(after.pinned_tls_certificate_sha256, leafB.fingerprint);
    assert.equal(after.pinned_server_public_key, before.pinned_server_public_key);
    assert.equal(registrations(), 1, 'the second registration made the peer again');

    // Forgotten again, and answered with another certificate of the CA: stage 2 refuses it as stage 1 does.
    await forget();
    await serve(leafA, ca.cert);
    const refused = await runLab();
    assert.equal(refused.code, 125, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `^wirecage: no WireGuard handshake with \\S+ within 3 s with the registration stored in \\S+lab\\.lease\\.json, and registering again failed: ${url} presented a TLS certificate with the SHA-256 fingerprint ${leafA.fingerprint}, but the certificate pinned for "lab" .* is ${leafB.fingerprint}: `,
      ),
    );
    assert.equal(registrations(), 0);
    assert.equal((await readLease('lab')).pinned_tls_certificate_sha256, leafB.fingerprint, 'the pin outlives the dropped answer');
  });
});
