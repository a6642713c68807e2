// Certificates for the servers a lab runs (`@wirecage/netns/lab`): a tiny CA,
// leaves it signs and self-signed leaves, made by openssl in a directory the
// caller owns. P-256 keys, valid 2 days. The cli's, wirecagesrv's and the
// integration suites' TLS tests all make theirs here.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LabCert {
  /** PEM file of the certificate (`<dir>/<name>.pem`). */
  cert: string;
  /** PEM file of its private key (`<dir>/<name>.key`). */
  key: string;
  /** The PEM text of `cert`. */
  pem: string;
  /** SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it ("AB:CD:…"). */
  fingerprint: string;
}

function openssl(args: string[]): string {
  try {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

const newKey = (name: string, key: string) => [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-subj',
  `/CN=${name}`,
  '-keyout',
  key,
];

function labCert(dir: string, name: string): LabCert {
  const cert = join(dir, `${name}.pem`);
  const fp = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', cert]);
  return { cert, key: join(dir, `${name}.key`), pem: readFileSync(cert, 'utf8'), fingerprint: fp.trim().replace(/^[^=]*=/, '') };
}

/** A self-signed CA certificate `name` in `dir`, that may sign leaves (labLeaf). */
export function labCa(dir: string, name: string): LabCert {
  const ca = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  openssl(['req', '-x509', ...newKey(name, join(dir, `${name}.key`)), ...ca, '-days', '2', '-out', join(dir, `${name}.pem`)]);
  return labCert(dir, name);
}

/** A server certificate `name` in `dir` for `san` ("IP:198.18.0.1", "DNS:other.example"): signed by `ca`, or self-signed without one. */
export function labLeaf(dir: string, name: string, san: string, ca?: LabCert): LabCert {
  const [key, cert] = [join(dir, `${name}.key`), join(dir, `${name}.pem`)];
  const ext = ['-addext', `subjectAltName=${san}`];
  if (!ca) {
    openssl(['req', '-x509', ...newKey(name, key), ...ext, '-days', '2', '-out', cert]);
    return labCert(dir, name);
  }
  const csr = join(dir, `${name}.csr`);
  openssl(['req', '-new', ...newKey(name, key), ...ext, '-out', csr]);
  const serial = `0x${randomBytes(8).toString('hex')}`;
  const signed = ['-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial, '-copy_extensions', 'copyall'];
  openssl(['x509', '-req', '-in', csr, ...signed, '-days', '2', '-out', cert]);
  return labCert(dir, name);
}
