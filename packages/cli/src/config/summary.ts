// What `wirecage check` prints: the parsed file in `wg show`'s words, public
// parts only. The private and preshared keys are never printed.
import { formatCidr, formatIp, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import { formatHostPort } from '@wirecage/wg-engine/config';
import type { WgQuickConfig } from './wg-quick.js';

export function summarizeConfig(cfg: WgQuickConfig): string {
  const i = cfg.interface;
  const out = [
    `interface: ${cfg.file}`,
    `  public key: ${keyToBase64(publicKeyOf(i.privateKey))}`,
    `  private key: (hidden${i.privateKeyFile ? `, read from ${i.privateKeyFile}` : ''})`,
  ];
  out.push(`  addresses: ${i.addresses.length ? i.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`).join(', ') : '(none)'}`);
  if (i.dns.servers.length) out.push(`  dns: ${i.dns.servers.join(', ')}`);
  else out.push("  dns: (none: the host's resolvers, if the tunnel routes them)");
  if (i.dns.search.length) out.push(`  search: ${i.dns.search.join(', ')}`);
  if (i.mtu !== undefined) out.push(`  mtu: ${i.mtu}`);
  if (i.listenPort !== undefined) out.push(`  listening port: ${i.listenPort}`);
  for (const p of cfg.peers) {
    out.push('', `peer: ${keyToBase64(p.publicKey)}`);
    if (p.presharedKey) out.push(`  preshared key: (hidden${p.presharedKeyFile ? `, read from ${p.presharedKeyFile}` : ''})`);
    out.push(`  endpoint: ${p.endpoint ? formatHostPort(p.endpoint) : '(none: waits for the peer to reach it)'}`);
    out.push(`  allowed ips: ${p.allowedIps.length ? p.allowedIps.map(formatCidr).join(', ') : '(none)'}`);
    if (p.persistentKeepalive) out.push(`  persistent keepalive: every ${p.persistentKeepalive} seconds`);
  }
  return `${out.join('\n')}\n`;
}
