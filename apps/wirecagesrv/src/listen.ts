// "host:port" listen addresses as flags give them: "0.0.0.0:8443", "[::]:51820", "198.51.100.7:443".
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(text: string, flag: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !isIP(host) || (m[1] !== undefined && isIP(host) !== 6) || port > 65535) {
    throw new Error(`${flag} "${text}" must be IP:PORT, such as 0.0.0.0:8443 or [::]:8443`);
  }
  return { host, port };
}

export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
