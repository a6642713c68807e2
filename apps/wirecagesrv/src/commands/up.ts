import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command, Errors, Flags } from '@oclif/core';
import { createLogger, keyToBase64, LOG_FORMATS, type Logger, type LogLevel } from '@wirecage/wg-engine';
import { fail } from '../fail.js';
import { DEFAULT_LEASE, DEFAULT_SUBNET } from '../registry/index.js';
import { usage } from '../api/admin-client.js';
import { DEFAULT_MAX_FLOWS, DEFAULT_MAX_FLOWS_PER_PEER } from '../nat/limits.js';
import { parseDnsUpstream } from '../nat/dns-upstream.js';
import { parseAllowDest } from '../nat/policy.js';
import { kernelNatRefusal } from '../nat/kernel-host.js';
import type { NatMode, NatOptions } from '../nat/types.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_MAX_PEERS } from '../server.js';
import { DEFAULT_FORWARD_PORTS, formatPortRange } from '../forwards/ports.js';
import { bindServerSockets, wireGuardSocketCount } from '../stage2/bind.js';
import { launchStage2 } from '../stage2/launch.js';
import { parseAddresses } from '../up/addresses.js';
import { apiSecurity } from '../up/api-security.js';
import { credentialFiles } from '../up/credentials.js';
import { adoptLegacyEnv, envName, withEnv } from '../env.js';
import { registryLocation } from '../up/registry-location.js';
import { statePathDefault } from '../up/state-path.js';
import { notifyTargetFromEnv } from '../sd-notify.js';
import { loadPrivateKey } from '../up/private-key.js';
import { readTokens, type TokenFlags } from '../up/tokens.js';
import { readSettings, SettingsFileError, type FileSetting } from '../config/env-file.js';
import { DEFAULT_REGISTER_RATE, LOG_LEVELS, settingsOrigin, type SettingsOrigin } from '../config/live-settings.js';

export default class Up extends Command {
  static override summary = 'Run the server: the registration API and the WireGuard endpoint.';
  static override description = [
    'Registered peers are kept in an SQLite file (--state) and put back on the WireGuard device at every start.',
    'The private key comes from --private-key-file or WIRECAGESRV_PRIVATE_KEY_B64, never from the command line; without either,',
    'a key is generated once into server.key next to the state file.',
    'Under systemd, the private key and the tokens may come as credentials (LoadCredential=): the files private-key, auth-token and',
    'admin-token in $CREDENTIALS_DIRECTORY stand in for the file flags not given; the registry defaults to $STATE_DIRECTORY/registry.db.',
    'Peers reach the internet through a NAT of its own (a user and network namespace with a TUN; no root needed),',
    "or with --nat kernel through this host's own forwarding and an nftables masquerade table it removes at exit (root),",
    'behind an egress policy that refuses loopback, link-local and private destinations unless --allow-lan/--allow-dest.',
    'Every flag can also be given by the environment variable WIRECAGESRV_<FLAG> (upper case, dashes as underscores:',
    '--wg-endpoint is WIRECAGESRV_WG_ENDPOINT), as shown with it. The unprefixed names of earlier releases (AUTH_TOKEN_FILE,',
    'WG_ENDPOINT, ...) still work in this release, each with a warning naming its new name.',
    'SIGHUP (or `wirecagesrv reload`) reads the TLS certificate and key and the token files (or credentials) again, without dropping',
    'NAT flows, WireGuard sessions or forwards; flags and environment variables are read at start only. With --config-file, a file of',
    'WIRECAGESRV_<FLAG>=value lines (a systemd EnvironmentFile) sets flags too, below flags and variables (flag > variable > file), and',
    'a reload reads it again: its --allow-dest, --allow-lan, --max-flows, --max-flows-per-peer, --register-rate and --log-level apply',
    'live (to new flows; established ones carry on), the rest is reported as needing a restart. SIGTERM and SIGINT stop it',
    "after the API's requests in flight are answered (--drain-timeout).",
  ].join('\n');
  static override examples = [
    'WIRECAGESRV_AUTH_TOKEN_FILE=/etc/wirecagesrv/token <%= config.bin %> up --wg-endpoint vpn.example.com:51820 --private-key-file /etc/wirecagesrv/private.key',
    'WIRECAGESRV_WG_ENDPOINT=vpn.example.com:51820 WIRECAGESRV_API_LISTEN=127.0.0.1:8443 <%= config.bin %> up --auth-token-file /etc/wirecagesrv/token',
  ];
  // Each flag also reads WIRECAGESRV_<FLAG> (up/env.ts).
  static override flags = withEnv({
    'config-file': Flags.string({
      helpValue: 'FILE',
      summary:
        'Settings as WIRECAGESRV_<FLAG>=value lines (systemd EnvironmentFile format), below flags and variables; read again on reload, which applies the egress policy, NAT limits, --register-rate and --log-level live.',
    }),
    'private-key-file': Flags.string({ summary: 'File holding the base64 private key (`wirecagesrv keygen --out FILE`).' }),
    'auth-token': Flags.string({
      summary: 'Token clients present to register (prefer --auth-token-file: argv is visible to other users).',
    }),
    'auth-token-file': Flags.string({ summary: 'File holding the registration token.' }),
    'admin-token': Flags.string({ summary: 'Token that manages every port forward (prefer --admin-token-file). Default: none.' }),
    'admin-token-file': Flags.string({ summary: 'File holding the admin token.' }),
    'forward-ports': Flags.string({
      default: formatPortRange(DEFAULT_FORWARD_PORTS),
      helpValue: 'LOW-HIGH',
      summary: 'Public ports port forwards may take; a request for another is refused (403).',
    }),
    'forward-listen-address': Flags.string({
      default: '0.0.0.0',
      summary: 'Address the public ports of port forwards are bound on (:: for both families).',
    }),
    'wg-endpoint': Flags.string({
      summary:
        'host:port clients are told to send WireGuard to; several comma-separated (the nodes of a fleet) are all told, the first to older clients. Default: --wg-listen when it names an address.',
    }),
    'wg-listen': Flags.string({
      default: '0.0.0.0:51820',
      summary: 'UDP address for WireGuard (0.0.0.0 or [::] listens on both families).',
    }),
    'api-listen': Flags.string({ default: '0.0.0.0:8443', summary: 'TCP address for the HTTP(S) API.' }),
    subnet: Flags.string({
      summary: `IPv4 pool; the server takes its first host address. Default: as recorded in --state, else ${DEFAULT_SUBNET}.`,
    }),
    subnet6: Flags.string({ summary: 'IPv6 pool. Default: as recorded in --state, else a random ULA /64 chosen once.' }),
    'tls-cert': Flags.string({ summary: 'PEM certificate (chain) for HTTPS; with --tls-key.', dependsOn: ['tls-key'] }),
    'tls-key': Flags.string({ summary: 'PEM private key for HTTPS; with --tls-cert.', dependsOn: ['tls-cert'] }),
    'insecure-http': Flags.boolean({
      default: false,
      summary:
        'Serve the API as plain HTTP on a non-loopback --api-listen (registration tokens then travel in clear). Without it, such an address needs --tls-cert/--tls-key.',
    }),
    'trusted-proxy': Flags.string({
      multiple: true,
      delimiter: ',',
      helpValue: 'CIDR',
      summary:
        'A reverse proxy whose X-Forwarded-For / Forwarded names the client for the rate limits (repeatable; comma-separated in its variable). Default: none, the TCP peer is the client.',
    }),
    lease: Flags.string({
      default: DEFAULT_LEASE,
      helpValue: 'DURATION',
      summary:
        'How long a registration lasts unless renewed by registering again or by a handshake (e.g. 30d, 12h, 90m); expired peers are removed with their forwards.',
    }),
    state: Flags.string({
      summary:
        'Registry file. Default: $STATE_DIRECTORY/registry.db under systemd (StateDirectory=), else $XDG_STATE_HOME/wirecagesrv/registry.db (~/.local/state/...).',
    }),
    registry: Flags.string({
      helpValue: 'FILE|URL',
      summary:
        'The registry: an SQLite file (default: --state), or postgres://USER@HOST/DB shared by the nodes of a fleet. A URL with a password is refused here: use --registry-url-file or the credential registry-url.',
    }),
    'registry-url-file': Flags.string({
      summary: "A file holding the registry's postgres:// URL, password and all (the credential registry-url stands in for it).",
    }),
    'node-name': Flags.string({
      summary: "This node's name in a fleet: recorded with each handshake it completes and in its heartbeat. Default: the host name.",
    }),
    mtu: Flags.integer({ default: 1420, min: 1280, max: 9000, summary: 'Tunnel MTU, told to clients.' }),
    'max-peers': Flags.integer({
      default: DEFAULT_MAX_PEERS,
      min: 1,
      summary: 'Most peers registered at once (also capped by the pool size).',
    }),
    dns: Flags.string({
      summary:
        "Comma-separated resolvers told to clients. Default: the server's tunnel addresses (IPv4 and IPv6), where its DNS forwarder answers.",
    }),
    'dns-upstream': Flags.string({
      multiple: true,
      delimiter: ',',
      summary:
        'Resolver the DNS forwarder relays to, IP[:PORT] ([IPv6]:PORT); repeatable, tried in order (comma-separated in its variable). Default: the nameservers of /etc/resolv.conf.',
    }),
    nat: Flags.option({
      options: ['userspace', 'kernel'] as const,
      default: 'userspace' as const,
      summary: 'How peers reach the internet: userspace (a namespace of our own, no root) or kernel (needs CAP_NET_ADMIN).',
    })(),
    'allow-lan': Flags.boolean({
      default: false,
      summary: 'Let peers reach private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).',
    }),
    'allow-dest': Flags.string({
      multiple: true,
      delimiter: ',',
      summary: 'A CIDR peers may reach even if the egress policy refuses it (repeatable; comma-separated in its variable).',
    }),
    'max-flows': Flags.integer({
      default: DEFAULT_MAX_FLOWS,
      min: 1,
      summary: 'Most TCP connections and UDP flows through the NAT at once.',
    }),
    'max-flows-per-peer': Flags.integer({
      default: DEFAULT_MAX_FLOWS_PER_PEER,
      min: 1,
      summary: 'Most flows one peer (source address) may hold at once.',
    }),
    'register-rate': Flags.integer({
      default: DEFAULT_REGISTER_RATE,
      min: 1,
      summary:
        'Registration attempts allowed per source (IPv4 address or IPv6 /64) in a burst and regained per minute; raise it only for load tests.',
    }),
    'metrics-listen': Flags.string({
      helpValue: 'ADDR',
      summary:
        "Serve Prometheus metrics (peers, data plane, registry, NAT) at http://ADDR/metrics: host:port, [IPv6]:port or :port. They name peers' keys and endpoints: keep ADDR private.",
    }),
    workers: Flags.integer({
      min: 0,
      max: 8,
      summary:
        'Data-plane worker threads that encrypt and decrypt (default: the number of CPUs, at most 8; 0 keeps everything on one thread).',
    }),
    'drain-timeout': Flags.integer({
      default: DEFAULT_DRAIN_TIMEOUT_MS / 1000,
      min: 0,
      max: 600,
      helpValue: 'SECONDS',
      summary: 'On SIGTERM the API stops accepting and lets the requests in flight finish for up to this long before it closes.',
    }),
    'log-level': Flags.option({ options: LOG_LEVELS, default: 'info' as const, summary: 'Logging detail.' })(),
    'log-format': Flags.option({
      options: LOG_FORMATS,
      default: 'text' as const,
      summary: 'Log lines on stderr: text (an ISO timestamp first) or json (one object per line: time, level, name, msg and fields).',
    })(),
  });

  private settingsFile(): SettingsOrigin | undefined {
    return mergeSettingsFile(this.argv, Object.keys(Up.flags));
  }

  async run(): Promise<void> {
    const { flags, settings, log } = await this.parseFlags();
    const statePath = resolve(flags.state ?? statePathDefault());
    const { privateKey, authToken, adminToken, tokenFiles, registryUrlFile } = readSecrets(flags, statePath, log);
    const registry = registryLocation(flags, registryUrlFile, statePath);
    const at = parseAddresses(flags);
    const dns = flags.dns
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const nat = natOptions(flags);
    const { tls, leaseMs, trustedProxies } = apiSecurity(flags, at.apiListen, log);
    const workers = flags.workers ?? Math.min(availableParallelism(), 8);
    let sockets;
    try {
      // A socket per data-plane shard, bound here with the caller's privileges (stage 2 could not).
      sockets = bindServerSockets(at.wgListen, at.apiListen, wireGuardSocketCount(workers));
    } catch (err) {
      privateKey.fill(0);
      return fail((err as Error).message);
    }
    const spec = {
      // Stage 2 sends READY=1 and the rest itself (sd-notify.ts).
      notify: notifyTargetFromEnv(),
      privateKey: keyToBase64(privateKey),
      authToken,
      wgEndpoint: at.wgEndpoint,
      wgEndpoints: at.wgEndpoints,
      wgListen: at.wgListen,
      apiListen: at.apiListen,
      tls,
      statePath,
      registry,
      nodeName: flags['node-name'],
      subnet: flags.subnet,
      subnet6: flags.subnet6,
      mtu: flags.mtu,
      maxPeers: flags['max-peers'],
      dns,
      adminToken,
      tokenFiles,
      drainTimeoutMs: flags['drain-timeout'] * 1000,
      forwardListenAddress: at.forwardListen,
      forwardPorts: at.forwardPorts,
      nat,
      workers,
      metricsListen: flags['metrics-listen'],
      registerRate: flags['register-rate'],
      trustedProxies,
      leaseMs,
      logLevel: flags['log-level'] as LogLevel,
      logFormat: flags['log-format'],
      settings,
    };
    privateKey.fill(0);
    // Stage 2 serves until a signal; it prints its own log and errors.
    const code = await launchStage2(spec, sockets);
    if (code !== 0) throw new Errors.ExitError(code);
  }

  /** The flags from argv, the environment and the settings file, and the logger they ask for. */
  private async parseFlags() {
    // Before parsing: the old names become the new ones, so the flags see them.
    const legacy = adoptLegacyEnv();
    const settings = this.settingsFile();
    const { flags, raw } = await this.parse(Up).catch((err: Error) => fromFile(err, settings, this.argv));
    splitListsFromEnv(flags);
    // Given on the command line: a flag wins over its variable and the file, at start and at every reload.
    if (settings) for (const t of raw) if (t.type === 'flag') settings.pinned[t.flag] = 'flag';
    const log = createLogger(flags['log-level'], { format: flags['log-format'], name: 'wirecagesrv' });
    for (const w of legacy) log.warn(w);
    return { flags, settings, log };
  }
}

/**
 * The private key and the tokens, from flags, their variables or systemd credentials, and the token
 * files a reload reads again. The variables that held a secret are removed, so no child process inherits them.
 */
function readSecrets(flags: TokenFlags & { 'private-key-file'?: string; 'registry-url-file'?: string }, statePath: string, log: Logger) {
  const keyB64 = process.env[envName('private-key-b64')];
  for (const secret of ['private-key-b64', 'auth-token', 'admin-token']) delete process.env[envName(secret)];
  const given = (f: string) => (f === 'private-key-b64' ? keyB64 !== undefined : (flags as Record<string, unknown>)[f] !== undefined);
  const credentials = credentialFiles(given);

  const privateKey = loadPrivateKey(keyB64, flags['private-key-file'] ?? credentials['private-key-file'], statePath, log);
  const { authToken, adminToken } = readTokens({ ...flags, ...credentials }, log);
  // What a reload (SIGHUP, `wirecagesrv reload`) reads again; a token given as a value is kept.
  const tokenFile = (f: 'auth-token-file' | 'admin-token-file') => {
    const file = flags[f] ?? credentials[f];
    return file === undefined ? undefined : resolve(file);
  };
  return {
    privateKey,
    authToken,
    adminToken,
    tokenFiles: { auth: tokenFile('auth-token-file'), admin: tokenFile('admin-token-file') },
    registryUrlFile: flags['registry-url-file'] ?? credentials['registry-url-file'],
  };
}

/**
 * With --config-file (or its variable), the file's settings become the variables not already set,
 * so oclif reads them as it reads the environment: flag > variable > file. Returns where the
 * settings came from, for reloads; undefined without a file.
 */
function mergeSettingsFile(argv: string[], flagNames: string[]): SettingsOrigin | undefined {
  const file = configFileArg(argv);
  if (file === undefined) return undefined;
  const path = resolve(file);
  let entries: Map<string, FileSetting>;
  try {
    entries = readSettings(path, flagNames);
  } catch (err) {
    if (err instanceof SettingsFileError) usage(err.message);
    throw err;
  }
  const pinned: SettingsOrigin['pinned'] = {};
  // A variable holding the file's own value most likely came from that file, as a unit's
  // EnvironmentFile= naming it too: it does not pin, so the file's next value applies on reload.
  for (const flag of flagNames)
    if (process.env[envName(flag)] && process.env[envName(flag)] !== entries.get(flag)?.value) pinned[flag] = 'environment';
  for (const [flag, s] of entries) if (!process.env[envName(flag)] && s.value !== '') process.env[envName(flag)] = s.value;
  return settingsOrigin(path, entries, pinned, flagNames);
}

/**
 * oclif splits a repeatable flag's value at its delimiter on the command line, but hands over its
 * variable's value whole: WIRECAGESRV_ALLOW_DEST=a,b would be one string, not two CIDRs.
 */
function splitListsFromEnv(flags: Record<string, unknown>): void {
  for (const [name, def] of Object.entries(Up.flags) as [string, { multiple?: boolean; delimiter?: string }][]) {
    const v = flags[name];
    if (def.multiple && def.delimiter && typeof v === 'string')
      flags[name] = v
        .split(def.delimiter)
        .map((s) => s.trim())
        .filter((s) => s !== '');
  }
}

/** A parse error about a value the settings file gave, said with the file's line; else the error as it was. */
function fromFile(err: Error, s: SettingsOrigin | undefined, argv: string[]): never {
  const given = (flag: string) => s?.pinned[flag] !== undefined || argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  const line = s && Object.entries(s.lines).find(([flag]) => !given(flag) && new RegExp(`--${flag}(?![\\w-])`).test(err.message));
  if (!s || !line) throw err;
  usage(`${s.file}:${line[1]}: ${envName(line[0])}: ${err.message.replace(/\s+/g, ' ').trim()}`);
}

/** --config-file before the flags are parsed (the file feeds the parse). */
function configFileArg(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--config-file') return argv[i + 1];
    if (a.startsWith('--config-file=')) return a.slice('--config-file='.length);
  }
  return process.env[envName('config-file')] || undefined;
}

function natOptions(flags: {
  nat: string;
  'allow-lan': boolean;
  'allow-dest'?: string[];
  'dns-upstream'?: string[];
  'max-flows': number;
  'max-flows-per-peer': number;
}): NatOptions {
  if (flags.nat === 'kernel') {
    const refusal = kernelNatRefusal();
    if (refusal) fail(refusal);
  }
  const allowDest = (flags['allow-dest'] ?? []).map((t) => t.trim()).filter((t) => t !== '');
  for (const t of allowDest) {
    try {
      parseAllowDest(t);
    } catch (err) {
      usage((err as Error).message);
    }
  }
  let dnsUpstream;
  try {
    const given = (flags['dns-upstream'] ?? []).filter((t) => t.trim() !== '');
    dnsUpstream = given.length > 0 ? given.map((t) => parseDnsUpstream(t)) : undefined;
  } catch (err) {
    usage((err as Error).message);
  }
  return {
    mode: flags.nat as NatMode,
    allowLan: flags['allow-lan'],
    allowDest,
    maxFlows: flags['max-flows'],
    maxFlowsPerPeer: flags['max-flows-per-peer'],
    dnsUpstream,
  };
}
