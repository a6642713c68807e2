// Trusting a server whose TLS certificate is self-signed or signed by a
// private CA (`add-server --ca-file FILE`): the PEM the user gave, checked to
// hold certificates and nothing secret, and the SHA-256 fingerprint of the
// server's leaf certificate, pinned on the first registration (lease-state.ts).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WirecageError } from '../errors.js';

/** The most a CA file may hold: a bundle of a few certificates, not a whole trust store by mistake. */
const MAX_CA_BYTES = 256 * 1024;

/** How certificate fingerprints are written: Node's fingerprint256, as `openssl x509 -fingerprint -sha256` prints them ("AB:CD:…"). */
export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/**
 * The certificates of a PEM text, each checked to parse, as one PEM string. A private key in the
 * text is refused (the wrong file was given, and it would be copied next to config.toml), as is a
 * text without any certificate. `what` names the text in messages ("--ca-file ca.pem").
 */
export function caCertificates(text: string, what: string): { pem: string; subjects: string[] } {
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  if (blocks.some((b) => b[1]!.includes('PRIVATE KEY')) || /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
    throw new WirecageError(
      `${what} holds a private key: give the certificate of the CA (or the server's self-signed certificate), never a key`,
    );
  }
  const certs = blocks.filter((b) => b[1] === 'CERTIFICATE').map((b) => b[0]);
  if (certs.length === 0) throw new WirecageError(`${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  const subjects = certs.map((pem, i) => {
    try {
      return new X509Certificate(pem).subject.replace(/\n/g, ', ');
    } catch (err) {
      throw new WirecageError(`${what}: certificate ${i + 1} cannot be read: ${(err as Error).message}`);
    }
  });
  return { pem: `${certs.join('\n')}\n`, subjects };
}

/** The certificates in FILE (see caCertificates); a missing or unreadable file says which and why. */
export function readCaFile(file: string, what: string, fix: string): string {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CA_BYTES) throw new WirecageError(`larger than ${MAX_CA_BYTES / 1024} KiB`);
    text = buf.toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? (err as Error).message})`;
    throw new WirecageError(`${what} ${file} ${why}${fix ? `: ${fix}` : ''}`);
  }
  return caCertificates(text, `${what} ${file}`).pem;
}
