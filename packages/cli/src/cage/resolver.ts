// Name resolution inside the cage: a resolv.conf listing only the tunnel's
// DNS servers, and an nsswitch.conf whose hosts line is `files dns`, so no
// NSS module (resolve, mdns, myhostname...) talks to a host daemon around the
// tunnel. The other nsswitch databases (passwd, group...) stay as they are.
import { readFileSync } from 'node:fs';

export function resolvConf(servers: string[], search: string[]): string {
  const lines = ['# written by wirecage: only resolvers reachable through the tunnel'];
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (search.length) lines.push(`search ${search.join(' ')}`);
  // The cage has one way out; fail over quickly between the tunnel's servers.
  lines.push('options timeout:2 attempts:2');
  return lines.join('\n') + '\n';
}

export function nsswitchConf(hostFile = '/etc/nsswitch.conf'): string {
  let text: string;
  try {
    text = readFileSync(hostFile, 'utf8');
  } catch {
    // No host file: a minimal one.
    return 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n';
  }
  const out = text.split('\n').filter((l) => !/^\s*hosts\s*:/.test(l));
  out.push('hosts: files dns');
  return out.join('\n').replace(/\n*$/, '\n');
}

/** Nameservers of the host's resolv.conf. */
export function hostNameservers(file = '/etc/resolv.conf'): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((s): s is string => !!s)
      .map((s) => s.split('%')[0]!);
  } catch {
    return [];
  }
}

/** Host resolver sockets that would answer around the tunnel; hidden inside the cage. */
export const HOST_RESOLVER_PATHS = ['/run/nscd', '/var/run/nscd', '/run/systemd/resolve', '/var/run/systemd/resolve'];
