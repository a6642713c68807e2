// A peer's UDP endpoint: where its authenticated packets last came from
// (roaming) or where the configuration says it is.
import { isIPv4, isIPv6 } from 'node:net';
import { parseCidr } from './allowed-ips.js';
import { parseHostPort } from './host-port.js';

export class Endpoint {
  private _bytes: Buffer | null = null;

  constructor(
    readonly address: string,
    readonly port: number,
    readonly family: 4 | 6,
  ) {}

  static of(address: string, port: number): Endpoint {
    const host = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    if (isIPv4(host)) return new Endpoint(host, port, 4);
    if (isIPv6(host)) return new Endpoint(host, port, 6);
    throw new Error(`endpoint address "${address}" is not an IPv4 or IPv6 address`);
  }

  /** Parses "192.0.2.1:51820" or "[2001:db8::1]:51820" (numeric hosts only; name resolution is the caller's job). */
  static parse(text: string): Endpoint {
    const { host, port } = parseHostPort(text, { what: 'endpoint' });
    return Endpoint.of(host, port);
  }

  /** Address bytes then the port in network order: the input of the cookie MAC. */
  get bytes(): Buffer {
    if (!this._bytes) {
      const ip = parseCidr(this.address.split('%')[0]!).address;
      const b = Buffer.alloc(ip.length + 2);
      ip.copy(b, 0);
      b.writeUInt16BE(this.port, ip.length);
      this._bytes = b;
    }
    return this._bytes;
  }

  equals(address: string, port: number): boolean {
    return this.port === port && this.address === address;
  }

  toString(): string {
    return this.family === 6 ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }
}
