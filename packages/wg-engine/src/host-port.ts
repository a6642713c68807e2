// "host:port" as every flag, config key and UAPI line writes it: IPv4:port,
// [IPv6]:port (brackets required, so the port is never a guess), and where the
// caller allows them, DNS names and ":port" (every local address). One parser
// for all of them; what differs between callers is an option, and each caller
// puts its flag or key name in front of the reason.
import { isIP } from 'node:net';

export interface HostPortOptions {
  /** Also take DNS names (resolving them is the caller's job). Default: literal addresses only. */
  names?: boolean;
  /** ":port" stands for every local address: host comes back undefined. */
  anyHost?: boolean;
  /** Take port 0 (a listener the kernel gives a free port). Default: 1-65535. */
  portZero?: boolean;
  /** The port may be left out (a Forwarded hop): port comes back undefined. */
  portOptional?: boolean;
  /** Names the value in the message: `${what} "${text}": ${reason}`. Default "address". */
  what?: string;
}

export interface HostPort {
  host: string;
  port: number;
}

export class HostPortError extends Error {
  override name = 'HostPortError';

  constructor(
    readonly text: string,
    /** Why, without the text: for callers that word the message themselves. */
    readonly reason: string,
    what: string,
  ) {
    super(`${what} "${text}": ${reason}`);
  }
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

/** A DNS name, but not something that only looks like a mistyped IPv4 address (10.0.0.300). */
export function isHostName(text: string): boolean {
  return text.length <= 253 && HOST_NAME.test(text) && !/^[0-9.]+$/.test(text);
}

// The overloads carry the options into the result's type: no undefined host unless ":port" was allowed.
export function parseHostPort(
  text: string,
  opts: HostPortOptions & { anyHost: true; portOptional?: false },
): { host: string | undefined; port: number };
export function parseHostPort(
  text: string,
  opts: HostPortOptions & { portOptional: true; anyHost?: false },
): { host: string; port: number | undefined };
export function parseHostPort(text: string, opts?: HostPortOptions & { anyHost?: false; portOptional?: false }): HostPort;
export function parseHostPort(text: string, opts: HostPortOptions = {}): { host: string | undefined; port: number | undefined } {
  const fail = (reason: string) => new HostPortError(text, reason, opts.what ?? 'address');
  const bracketed = text.startsWith('[');
  const close = bracketed ? text.indexOf(']') : -1;
  // The port follows the closing bracket, or the last colon of an unbracketed host.
  const colon = bracketed ? (text[close + 1] === ':' ? close + 1 : -1) : text.lastIndexOf(':');
  if (bracketed && (close < 0 || (close + 1 !== text.length && colon < 0))) throw fail(`expected ${forms(opts)}`);
  if (colon < 0 && !(opts.portOptional && (bracketed || !text.includes(':')))) throw fail(`expected ${forms(opts)}`);
  const hostPart = colon < 0 ? text : text.slice(0, colon);
  const port = colon < 0 ? undefined : parsePort(text.slice(colon + 1), opts, fail);

  if (bracketed) {
    const host = hostPart.slice(1, -1);
    if (isIP(host) !== 6) throw fail(`"${host}" is not an IPv6 address`);
    return { host, port };
  }
  if (hostPart === '') {
    if (opts.anyHost) return { host: undefined, port };
    throw fail(`expected ${forms(opts)}`);
  }
  if (hostPart.includes(':')) throw fail(`write an IPv6 address in brackets, as [${hostPart}]:${text.slice(colon + 1)}`);
  if (isIP(hostPart) === 4 || (opts.names && isHostName(hostPart))) return { host: hostPart, port };
  throw fail(`"${hostPart}" is not an IPv4 address${opts.names ? ' or host name' : ''}`);
}

function parsePort(text: string, opts: HostPortOptions, fail: (reason: string) => Error): number {
  const min = opts.portZero ? 0 : 1;
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= min && port <= 65535)) throw fail(`port "${text}" is not a number from ${min} to 65535`);
  return port;
}

function forms(opts: HostPortOptions): string {
  const all = [opts.names ? 'host:port' : 'IPv4:port', '[IPv6]:port', ...(opts.anyHost ? [':port'] : [])];
  return `${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}`;
}

/** The inverse of parseHostPort: IPv6 in brackets, no host as ":port". */
export function formatHostPort(a: { host: string | undefined; port: number }): string {
  if (a.host === undefined) return `:${a.port}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
