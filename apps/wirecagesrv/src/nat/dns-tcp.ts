// DNS over TCP (what a client falls back to after a truncated answer, and
// what zone-sized answers need): each connection on the gateway's port 53 is
// relayed as a byte stream to the first upstream that accepts a TCP
// connection from the host network. The client is held paused until then; if
// none accepts, it gets a reset. Half-close is carried, and a connection
// idle in both directions is cut.
import net from 'node:net';
import { formatDnsUpstream, type DnsUpstream } from './dns-upstream.js';

export interface TcpRelayParams {
  upstreams: () => DnsUpstream[];
  connectTimeoutMs: number;
  idleMs: number;
  /** The upstream that accepted, or every failure. */
  onUpstream: (u: DnsUpstream | null, failures: string[]) => void;
}

/** Connects to one upstream; the reason as a string when it refuses or does not answer in time. */
function connectOne(u: DnsUpstream, timeoutMs: number): Promise<net.Socket | string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: u.address, port: u.port, allowHalfOpen: true });
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve(`${formatDnsUpstream(u)}: no answer within ${timeoutMs} ms`);
    });
    s.once('connect', () => {
      s.setTimeout(0);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      s.destroy();
      resolve(`${formatDnsUpstream(u)}: ${err.code ?? err.message}`);
    });
  });
}

/** Relays one accepted (paused) client connection; resolves when both sides are closed. */
export async function relayDnsTcp(client: net.Socket, p: TcpRelayParams): Promise<void> {
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.on('error', () => {});
  const failures: string[] = [];
  let upstream: net.Socket | null = null;
  let chosen: DnsUpstream | null = null;
  for (const u of p.upstreams()) {
    if (client.destroyed) break;
    const r = await connectOne(u, p.connectTimeoutMs);
    if (typeof r === 'string') {
      failures.push(r);
      continue;
    }
    upstream = r;
    chosen = u;
    break;
  }
  p.onUpstream(chosen, failures);
  if (!upstream || client.destroyed) {
    upstream?.destroy();
    if (!client.destroyed) client.resetAndDestroy();
    await clientClosed;
    return;
  }
  const up = upstream;
  const upClosed = new Promise<void>((resolve) => up.once('close', () => resolve()));
  up.on('error', () => client.resetAndDestroy());
  // The client gone, nothing the upstream says can be delivered (the other way round, the pipe
  // still has to flush the upstream's last answer to the client, and ends it then).
  client.once('close', () => up.destroy());
  client.on('error', () => up.resetAndDestroy());
  // A socket's timeout counts its reads and writes, and the pipes write what the other side reads:
  // either timer firing means nothing moved either way.
  const idle = () => {
    up.destroy();
    client.destroy();
  };
  client.setTimeout(p.idleMs, idle);
  up.setTimeout(p.idleMs, idle);
  client.pipe(up);
  up.pipe(client);
  client.resume();
  await Promise.all([clientClosed, upClosed]);
}
