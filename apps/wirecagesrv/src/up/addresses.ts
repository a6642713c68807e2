// Where `up` listens and what it tells clients: checked before any socket is
// bound, each bad value a usage error (exit 2).
import { isIP } from 'node:net';
import { parseHostPort, type HostPortError } from '@wirecage/wg-engine';
import { usage } from '../api/admin-client.js';
import { parsePortRange, type PortRange } from '../forwards/ports.js';
import { formatListen, parseListen, type ListenAddress } from '../listen.js';
import { envName } from '../env.js';

export interface AddressFlags {
  'forward-listen-address': string;
  'forward-ports': string;
  'wg-listen': string;
  'api-listen': string;
  'wg-endpoint'?: string;
}

export interface Addresses {
  forwardListen: string;
  forwardPorts: PortRange;
  wgListen: ListenAddress;
  apiListen: ListenAddress;
  /** The first of wgEndpoints: what older clients read (server_endpoint). */
  wgEndpoint: string;
  /** Every host:port clients may send WireGuard to: the nodes of a fleet (server_endpoints). */
  wgEndpoints: string[];
}

export function parseAddresses(flags: AddressFlags): Addresses {
  const forwardListen = flags['forward-listen-address'];
  if (!isIP(forwardListen)) usage(`--forward-listen-address "${forwardListen}" must be an IP address, such as 0.0.0.0 or ::`);
  let forwardPorts, wgListen, apiListen;
  try {
    forwardPorts = parsePortRange(flags['forward-ports']);
  } catch (err) {
    return usage((err as Error).message);
  }
  try {
    wgListen = parseListen(flags['wg-listen'], '--wg-listen');
    apiListen = parseListen(flags['api-listen'], '--api-listen');
  } catch (err) {
    return usage((err as Error).message);
  }
  const wgEndpoints = wgEndpointsOf(flags['wg-endpoint'], wgListen);
  return { forwardListen, forwardPorts, wgListen, apiListen, wgEndpoint: wgEndpoints[0]!, wgEndpoints };
}

/** --wg-endpoint (one host:port, or several comma-separated), else --wg-listen when it names an address (a wildcard names none). */
function wgEndpointsOf(given: string | undefined, wgListen: ListenAddress): string[] {
  const wildcard = wgListen.host === '0.0.0.0' || wgListen.host === '::';
  const text = given ?? (wildcard ? undefined : formatListen(wgListen));
  if (text === undefined) {
    return usage(
      `--wg-endpoint (${envName('wg-endpoint')}) is required when --wg-listen is a wildcard: the host:port clients reach, such as vpn.example.com:51820`,
    );
  }
  const endpoints = text.split(',').map((e) => e.trim());
  for (const e of endpoints) {
    try {
      // Clients parse it as a wg-quick Endpoint: held to the same rule here, before anyone registers.
      parseHostPort(e, { names: true });
    } catch (err) {
      usage(`--wg-endpoint "${e}" must be HOST:PORT (IPv6 in brackets), or several comma-separated: ${(err as HostPortError).reason}`);
    }
  }
  return endpoints;
}
