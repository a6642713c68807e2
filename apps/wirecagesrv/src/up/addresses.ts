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
  wgEndpoint: string;
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
  return { forwardListen, forwardPorts, wgListen, apiListen, wgEndpoint: wgEndpointOf(flags['wg-endpoint'], wgListen) };
}

/** --wg-endpoint, else --wg-listen when it names an address (a wildcard names none). */
function wgEndpointOf(given: string | undefined, wgListen: ListenAddress): string {
  const wildcard = wgListen.host === '0.0.0.0' || wgListen.host === '::';
  const wgEndpoint = given ?? (wildcard ? undefined : formatListen(wgListen));
  if (wgEndpoint === undefined) {
    return usage(
      `--wg-endpoint (${envName('wg-endpoint')}) is required when --wg-listen is a wildcard: the host:port clients reach, such as vpn.example.com:51820`,
    );
  }
  try {
    // Clients parse it as a wg-quick Endpoint: held to the same rule here, before anyone registers.
    parseHostPort(wgEndpoint, { names: true });
  } catch (err) {
    usage(`--wg-endpoint "${wgEndpoint}" must be HOST:PORT (IPv6 in brackets): ${(err as HostPortError).reason}`);
  }
  return wgEndpoint;
}
