// A client of the lab's server as the server suites drive one by hand: JSON
// requests with curl from the client namespace (headers and body from files,
// so tokens stay out of argv), and wireguard-go configured from a
// registration, with what the server counts when it refuses that key.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabProcess } from './process.js';
import { GATEWAY4, scrapeMetric, type Registration, type SrvSide } from './srv-lab.js';
import { waitFor } from './wait.js';
import type { WireguardGoPeer } from './wireguard-go.js';

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface ApiAt {
  /** Default the lab's plain-HTTP API, `http://srvAddr:8443`. */
  base?: string;
  /** More curl arguments (`--cacert FILE`). */
  curl?: string[];
}

/** `method route` on the server's API with `headers` ("Name: value") and a JSON body, by curl in the client namespace. */
export async function apiRequest(
  l: SrvSide,
  method: string,
  route: string,
  headers: string[],
  body?: unknown,
  at: ApiAt = {},
): Promise<ApiAnswer> {
  const headerFile = join(l.dir, `headers-${randomBytes(4).toString('hex')}`);
  await writeFile(headerFile, `${headers.join('\n')}\n`, { mode: 0o600 });
  const args = ['-sS', '--max-time', '5', '-w', '\n%{http_code}', ...(at.curl ?? []), '-X', method, '-H', `@${headerFile}`];
  if (body !== undefined) {
    const bodyFile = join(l.dir, `body-${randomBytes(4).toString('hex')}.json`);
    await writeFile(bodyFile, JSON.stringify(body));
    args.push('-H', 'Content-Type: application/json', '--data-binary', `@${bodyFile}`);
  }
  const r = await l.cli.runOrThrow('curl', [...args, `${at.base ?? `http://${l.srvAddr}:8443`}${route}`]);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: JSON.parse(lines.join('\n')) as Record<string, unknown> };
}

/** wireguard-go's peer entry for the server, as the registration gives it; set again, it forgets any session. */
export async function setServerPeer(go: WireguardGoPeer, reg: Registration): Promise<void> {
  await go.removePeer(reg.server_public_key);
  await go.setPeer({
    publicKey: reg.server_public_key,
    endpoint: reg.server_endpoint,
    allowedIps: reg.allowed_ips,
    persistentKeepalive: reg.persistent_keepalive,
  });
}

/** Configures wireguard-go in the client namespace as the registration says: its addresses, MTU and the server as its peer. */
export async function wgClientUp(l: SrvSide, go: WireguardGoPeer, reg: Registration): Promise<void> {
  await l.cli.addAddress(go.ifname, reg.client_address);
  await l.cli.addAddress(go.ifname, reg.client_address6);
  await l.cli.linkUp(go.ifname, reg.mtu);
  await setServerPeer(go, reg);
}

/** Handshakes the engine refused because it knows no such peer, from the server's /metrics on `metricsListen`. */
export const unknownPeerDrops = (l: SrvSide, metricsListen: string): Promise<number> =>
  scrapeMetric(l.srv, metricsListen, /^wirecage_drops_total\{[^}]*reason="unknown-peer"[^}]*\} (\d+)$/m);

/**
 * Starts a new session from wireguard-go and waits until the server refuses its handshake as from an
 * unknown key (the count of such drops grows); `what` names the key for the timeout's message.
 */
export async function untilHandshakeRefused(
  l: SrvSide,
  server: LabProcess,
  go: WireguardGoPeer,
  reg: Registration,
  metricsListen: string,
  what: string,
): Promise<void> {
  const before = await unknownPeerDrops(l, metricsListen);
  await setServerPeer(go, reg);
  await waitFor(
    async () => {
      // Any packet into the tunnel makes wireguard-go initiate.
      await l.cli.run('ping', ['-n', '-c', '1', '-W', '1', GATEWAY4], { timeoutMs: 3000 });
      return (await unknownPeerDrops(l, metricsListen)) > before;
    },
    { what: `the server to refuse a handshake from ${what}`, timeoutMs: 15_000, intervalMs: 200, describe: () => server.describe() },
  );
}
