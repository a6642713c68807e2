// A client of the API for the route tests: keys, Wirecage-Proof headers as
// wirecage computes them, requests over the tests' Unix socket, and ports.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { createSocket } from 'node:dgram';
import { generatePrivateKey, keyProofHeader, keyProofKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';

export interface Client {
  key: string;
  priv: Buffer;
}

export function newClient(): Client {
  const priv = generatePrivateKey();
  return { priv, key: keyToBase64(publicKeyOf(priv)) };
}

/** The Wirecage-Proof header as the client computes it with its own private key, for `serverPub`; `as` names another key. */
export function proofFor(
  c: Client,
  serverPub: Buffer,
  req: { method: string; route: string; body: string },
  opts: { time?: number; nonce?: string; as?: string } = {},
): string {
  const k = keyProofKey(c.priv, serverPub, publicKeyOf(c.priv), serverPub)!;
  const time = opts.time ?? Math.floor(Date.now() / 1000);
  const nonce = opts.nonce ?? randomBytes(16).toString('base64url');
  return keyProofHeader(k, { method: req.method, route: req.route, clientPublicKey: opts.as ?? c.key, time, nonce, body: req.body });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** The client a reverse proxy on the API's Unix socket names (it must name one); every test request shares it. */
export const PROXIED_CLIENT = { 'x-forwarded-for': '192.0.2.100' };

/** One request over the API's Unix socket; a body goes as JSON unless `headers` name another content-type. */
export function request(sock: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const h = {
      ...PROXIED_CLIENT,
      ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
      ...headers,
    };
    const req = http.request({ socketPath: sock, method, path, headers: h, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body: text ? (JSON.parse(text) as Answer['body']) : {} });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A TCP port on 127.0.0.1 that nothing held a moment ago. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Whether something already listens on 127.0.0.1:port (tcp) or has it bound (udp). */
export async function portTaken(port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<boolean> {
  if (protocol === 'udp') {
    const s = createSocket('udp4');
    return new Promise((resolve) => {
      s.once('error', () => resolve(true));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
  }
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(true));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}
