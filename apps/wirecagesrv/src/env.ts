// The environment a flag reads: one rule, WIRECAGESRV_ and the flag's name in
// upper case with dashes as underscores (--wg-endpoint: WIRECAGESRV_WG_ENDPOINT),
// so that nothing else in a service's environment (LOG_LEVEL, API_LISTEN, ...)
// configures the server by accident. The unprefixed names of earlier releases
// still work for one release, each with a warning naming its replacement.

export const ENV_PREFIX = 'WIRECAGESRV_';

/** The variable that sets --NAME. */
export function envName(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replace(/-/g, '_');
}

/** Each flag given its variable by the rule (oclif reads `env` when the flag is absent from argv). */
export function withEnv<T extends Record<string, object>>(flags: T): T {
  return Object.fromEntries(Object.entries(flags).map(([name, f]) => [name, { ...f, env: envName(name) }])) as T;
}

/**
 * The names of the last release, kept for this one: flag -> old variable ('private-key-b64' is the
 * key itself, which has no flag). Delete this table in the next release.
 */
const LEGACY: Readonly<Record<string, string>> = {
  'private-key-file': 'WG_PRIVATE_KEY_FILE',
  'private-key-b64': 'WG_PRIVATE_KEY_B64',
  'auth-token': 'AUTH_TOKEN',
  'auth-token-file': 'AUTH_TOKEN_FILE',
  'admin-token': 'ADMIN_TOKEN',
  'admin-token-file': 'ADMIN_TOKEN_FILE',
  'forward-ports': 'FORWARD_PORTS',
  'forward-listen-address': 'FORWARD_LISTEN_ADDRESS',
  'wg-endpoint': 'WG_ENDPOINT',
  'wg-listen': 'WG_LISTEN',
  'api-listen': 'API_LISTEN',
  subnet: 'WG_SUBNET',
  subnet6: 'WG_SUBNET6',
  'tls-cert': 'TLS_CERT',
  'tls-key': 'TLS_KEY',
  'insecure-http': 'INSECURE_HTTP',
  'trusted-proxy': 'TRUSTED_PROXY',
  lease: 'LEASE',
  mtu: 'WG_MTU',
  'max-peers': 'MAX_PEERS',
  dns: 'WG_DNS',
  'dns-upstream': 'DNS_UPSTREAM',
  'allow-lan': 'ALLOW_LAN',
  'allow-dest': 'ALLOW_DEST',
  'max-flows': 'MAX_FLOWS',
  'max-flows-per-peer': 'MAX_FLOWS_PER_PEER',
  'register-rate': 'REGISTER_RATE',
  'metrics-listen': 'METRICS_LISTEN',
  workers: 'WG_WORKERS',
  'log-level': 'LOG_LEVEL',
};

/**
 * Moves each old variable set in `env` to its new name (unless the new one is set: it wins) and
 * removes the old one; returns one warning per old name found. Run before the flags are parsed;
 * `flags` limits it to a command's own flags (another command's old names are not its business).
 */
export function adoptLegacyEnv(env: NodeJS.ProcessEnv = process.env, flags?: readonly string[]): string[] {
  const warnings: string[] = [];
  for (const [flag, old] of Object.entries(LEGACY)) {
    if (flags && !flags.includes(flag)) continue;
    const value = env[old];
    if (value === undefined) continue;
    const name = envName(flag);
    delete env[old];
    if (env[name] !== undefined) {
      warnings.push(`${old} is ignored: ${name} is set too (${old} is the old name of ${name})`);
      continue;
    }
    env[name] = value;
    warnings.push(`${old} is deprecated and will stop working in the next release: set ${name} instead`);
  }
  return warnings;
}
