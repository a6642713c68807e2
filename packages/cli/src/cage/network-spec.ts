// The tunnel's part of the CageSpec from a wg-quick-shaped config and the
// flags that override it (--dns, --mtu): endpoint names resolved with the
// host's resolver, DNS servers chosen. Stage 1 builds it for every run;
// stage 2 builds it again from the answer of a registration made after the
// handshake with a stored answer failed (it is still in the host's network
// namespace, so it resolves and connects as stage 1 does).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AllowedIps, formatCidr, formatHostPort, formatIp, keyToBase64, parseCidr } from '@wirecage/wg-engine/config';
import type { WgQuickConfig } from '../config/wg-quick.js';
import { hostNameservers } from './resolver.js';
import { RunError } from './run-error.js';
import type { CageSpec } from './spec.js';

/** The run flags that override what the config says about the tunnel. */
export interface NetworkOptions {
  dns?: string[];
  dnsOverride: boolean;
  mtu?: number;
}

export type NetworkSpec = Pick<CageSpec, 'mtu' | 'privateKey' | 'listenPort' | 'addresses' | 'peers' | 'dns'>;

export async function networkSpec(cfg: WgQuickConfig, opts: NetworkOptions): Promise<NetworkSpec> {
  const peers = [];
  for (const p of cfg.peers) {
    let endpoint: string | undefined;
    let endpointText: string | undefined;
    if (p.endpoint) {
      endpointText = formatHostPort(p.endpoint);
      let address = p.endpoint.host;
      if (!isIP(address)) {
        try {
          address = (await lookup(address)).address;
        } catch {
          throw new RunError(`${cfg.file}:${p.line}: Endpoint: cannot resolve "${p.endpoint.host}"`);
        }
      }
      endpoint = formatHostPort({ host: address, port: p.endpoint.port });
    }
    peers.push({
      publicKey: keyToBase64(p.publicKey),
      presharedKey: p.presharedKey ? keyToBase64(p.presharedKey) : undefined,
      endpoint,
      endpointText,
      allowedIps: p.allowedIps.map(formatCidr),
      persistentKeepalive: p.persistentKeepalive,
    });
  }

  return {
    mtu: opts.mtu ?? cfg.interface.mtu ?? 1420,
    privateKey: keyToBase64(cfg.interface.privateKey),
    listenPort: cfg.interface.listenPort,
    addresses: cfg.interface.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
    peers,
    dns: chooseDns(cfg, opts),
  };
}

function chooseDns(cfg: WgQuickConfig, opts: NetworkOptions): CageSpec['dns'] {
  const search = cfg.interface.dns.search;
  if (opts.dns && opts.dns.length) {
    for (const d of opts.dns) if (!isIP(d)) throw new RunError(`--dns ${d}: not an IP address`);
    return { servers: opts.dns, search };
  }
  if (cfg.interface.dns.servers.length) return { servers: cfg.interface.dns.servers, search };
  if (!opts.dnsOverride) return null;
  // No DNS given: the host's resolvers will do if the tunnel routes them (a resolver on loopback, such as systemd-resolved's, cannot be reached from the cage).
  const routes = new AllowedIps<true>();
  for (const p of cfg.peers) for (const c of p.allowedIps) routes.insert(c, true);
  const usable = hostNameservers().filter((s) => {
    const c = parseCidr(s);
    return routes.lookup(c.family, c.address) === true && !isLoopback(s);
  });
  if (usable.length === 0) {
    throw new RunError(
      `${cfg.file}: no DNS = in [Interface], and the host's resolvers cannot be reached through the tunnel; add DNS = <server address> (or pass --dns)`,
    );
  }
  return { servers: usable, search };
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}
