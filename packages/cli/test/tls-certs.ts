// Certificates for the TLS tests, made by openssl in a temporary directory: a
// tiny CA, leaves it signs, and self-signed leaves. P-256 keys, valid 2 days.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
  /** The PEM text of `cert`. */
  pem: string;
  /** SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it ("AB:CD:…"). */
  fingerprint: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function files(dir: string, name: string): CertFiles {
  const cert = join(dir, `${name}.pem`);
  const fp = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', cert]);
  return { cert, key: join(dir, `${name}.key`), pem: readFileSync(cert, 'utf8'), fingerprint: fp.trim().replace(/^[^=]*=/, '') };
}

export function makeCa(dir: string, name: string): CertFiles {
  openssl([
    'req',
    '-x509',
    ...newKey,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.pem`),
  ]);
  return files(dir, name);
}

/** A server certificate for `san` ("IP:127.0.0.1", "DNS:other.example"): signed by `ca`, or self-signed without one. */
export function makeLeaf(dir: string, name: string, san: string, ca?: CertFiles): CertFiles {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  const ext = ['-addext', `subjectAltName=${san}`];
  if (!ca) {
    openssl(['req', '-x509', ...newKey, '-days', '2', '-subj', `/CN=${name}`, ...ext, '-keyout', key, '-out', cert]);
    return files(dir, name);
  }
  const csr = join(dir, `${name}.csr`);
  openssl(['req', '-new', ...newKey, '-subj', `/CN=${name}`, ...ext, '-keyout', key, '-out', csr]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-copy_extensions',
    'copyall',
    '-out',
    cert,
  ]);
  return files(dir, name);
}
