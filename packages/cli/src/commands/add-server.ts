import { readFileSync, rmSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { Args, Command, Flags } from '@oclif/core';
import { checkApiUrl, isServerName, leaseFileFor, loadServers, saveServers } from '../servers/config.js';

/** Loopback: 127/8, ::1 (and v4-mapped 127/8), localhost. Plain HTTP is accepted there only. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^::ffff:7f[0-9a-f]{2}:/.test(h);
  return false;
}

/** The token in FILE: the file must be 0600 or stricter (no access for group or others); one line, trailing newline dropped. */
function readTokenFile(file: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new Error(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new Error(`--token-file ${file}: mode ${(mode & 0o777).toString(8).padStart(4, '0')} lets others read the token; chmod 600 ${file}`);
  }
  const token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (token === '' || /[\r\n]/.test(token)) throw new Error(`--token-file ${file}: expected the token on one line`);
  return token;
}

export default class AddServer extends Command {
  static override summary = 'Remember a wirecagesrv server under a name, for `wirecage run NAME`.';
  static override description = `Writes NAME, the API URL and the registration token to
$XDG_CONFIG_HOME/wirecage/config.toml (~/.config/wirecage/config.toml), mode
0600, atomically. An existing NAME is replaced only with --replace. Nothing is
sent to the server until the first \`wirecage run NAME\`.

The first run pins the server's WireGuard public key (in
keys/NAME.lease.json, with the registration it keeps); a later answer with
another key is refused (exit 125). Adding or replacing NAME drops that file,
so the next run pins the key it is then given: use --replace when the
server's key really changed.

Plain http:// is refused unless the host is loopback or --insecure-http is
given: the token would travel in clear, and anyone on the path could answer
in the server's place.

Exit status: 0 on success, 1 on a bad name, URL or token file, an existing
NAME without --replace, or an unreadable config.`;
  static override examples = [
    '<%= config.bin %> add-server work https://vpn.example.com:8443 --token-file ~/work-token',
    '<%= config.bin %> add-server work https://vpn.example.com:8443 --token "$(cat token)" --replace',
  ];
  static override args = {
    name: Args.string({ description: 'Server name: 1 to 32 of A-Z a-z 0-9 _ -', required: true }),
    url: Args.string({ description: 'API URL of wirecagesrv (https://, or http:// on loopback or with --insecure-http)', required: true }),
  };
  static override flags = {
    token: Flags.string({ summary: 'Registration token of the server.', env: 'WIRECAGE_TOKEN', helpValue: 'TOKEN' }),
    'token-file': Flags.string({ summary: 'Read the registration token from FILE (mode 0600 or stricter).', helpValue: 'FILE' }),
    replace: Flags.boolean({ summary: 'Replace an existing NAME (and forget the server key pinned for it).' }),
    'insecure-http': Flags.boolean({ summary: 'Accept an http:// URL to a host other than loopback (the token travels in clear).' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AddServer);
    try {
      if (!isServerName(args.name)) throw new Error(`server name "${args.name}" is not valid: use 1 to 32 of A-Z a-z 0-9 _ -`);
      const apiUrl = checkApiUrl(args.url);
      const u = new URL(apiUrl);
      if (u.protocol === 'http:' && !isLoopbackHost(u.hostname) && !flags['insecure-http']) {
        throw new Error(
          `${apiUrl}: plain HTTP to a host other than loopback would send the token in clear, and anyone on the path could answer as the server; use https:// (or --insecure-http on a network you trust)`,
        );
      }
      if (flags['token-file'] !== undefined && this.argv.some((a) => a === '--token' || a.startsWith('--token='))) {
        throw new Error('--token and --token-file both give the token: give one of them');
      }
      // --token-file wins over WIRECAGE_TOKEN from the environment.
      const token = flags['token-file'] !== undefined ? readTokenFile(flags['token-file']) : (flags.token ?? '');
      const cfg = loadServers();
      const old = cfg.servers.get(args.name);
      if (old && !flags.replace) {
        throw new Error(`a server named "${args.name}" exists already (${old.apiUrl}); to replace it (and forget its pinned key): wirecage add-server ${args.name} ${apiUrl} --replace`);
      }
      cfg.servers.set(args.name, { apiUrl, token });
      saveServers(cfg);
      // The kept registration and the pinned server key were for what NAME was before (or for a NAME removed earlier).
      rmSync(leaseFileFor(args.name), { force: true });
      process.stdout.write(`${old ? 'replaced' : 'added'} ${args.name} (${apiUrl}) in ${cfg.file}\n`);
    } catch (err) {
      process.stderr.write(`wirecage: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
