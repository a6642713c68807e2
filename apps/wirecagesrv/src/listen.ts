// "host:port" listen addresses as flags give them: "0.0.0.0:8443", "[::]:51820", "198.51.100.7:443".
// Literal addresses only (a name could resolve to an address the host does not have); port 0 lets the kernel pick.
import { formatHostPort, HostPortError, parseHostPort, type HostPort } from '@wirecage/wg-engine';

export type ListenAddress = HostPort;

export function parseListen(text: string, flag: string): ListenAddress {
  try {
    return parseHostPort(text.trim(), { portZero: true });
  } catch (err) {
    if (!(err instanceof HostPortError)) throw err;
    throw new Error(`${flag} "${text}" must be IP:PORT, such as 0.0.0.0:8443 or [::]:8443: ${err.reason}`, { cause: err });
  }
}

export const formatListen: (a: ListenAddress) => string = formatHostPort;
