import { readFileSync, rmSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { Args, Flags } from '@oclif/core';
import { writeSecretFileAtomic } from '@wirecage/wg-engine/config';
import { EXIT_USAGE } from '../cage/spec.js';
import { caFileEntryFor, checkApiUrl, isServerName, loadServers, resolveCaFile, saveServers } from '../servers/config.js';
import { MAX_KEY_SLOTS, keySlotFiles } from '../servers/key-slot.js';
import { readCaFile } from '../servers/tls-trust.js';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';

/** A command line add-server cannot use (bad NAME or URL, flags that exclude each other): exit 2, as oclif's own. */
const usageError = (message: string) => new WirecageError(message, EXIT_USAGE);

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
    throw new WirecageError(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new WirecageError(
      `--token-file ${file}: mode ${(mode & 0o777).toString(8).padStart(4, '0')} lets others read the token; chmod 600 ${file}`,
    );
  }
  const token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (token === '' || /[\r\n]/.test(token)) throw new WirecageError(`--token-file ${file}: expected the token on one line`);
  return token;
}

export default class AddServer extends WirecageCommand {
  static override summary = 'Remember a wirecagesrv server under a name, for `wirecage run NAME`.';
  static override description = `Writes NAME, the API URL and the registration token to
$XDG_CONFIG_HOME/wirecage/config.toml (~/.config/wirecage/config.toml), mode
0600, atomically. An existing NAME is replaced only with --replace. Nothing is
sent to the server until the first \`wirecage run NAME\`.

The first run pins the server's WireGuard public key (in
keys/NAME.lease.json, with the registration it keeps); a later answer with
another key is refused (exit 125). Adding or replacing NAME drops that file
(and keys/NAME.2.lease.json ... of runs at the same time), so the next run pins the key it is then given: use --replace when the
server's key really changed.

--ca-file FILE trusts a server whose certificate that CA signed (or which is
that self-signed certificate) instead of the public CAs; the certificates are
copied to ca/NAME.pem in the config directory, so the file given may go
away. With it, the first run also pins the SHA-256 fingerprint of the
server's certificate: a later certificate with another fingerprint is refused
(exit 125) before the token is sent, until --replace re-pins. A public CA's
certificate is not pinned (it is renewed every few months).

Plain http:// is refused unless the host is loopback or --insecure-http is
given: the token would travel in clear, and anyone on the path could answer
in the server's place.

Exit status: 0 on success; 2 on a bad NAME or URL, http:// off loopback
without --insecure-http, --ca-file with http://, or --token with
--token-file; 1 on a token or CA file that cannot be used, an existing NAME
without --replace, or an unreadable config.`;
  static override examples = [
    '<%= config.bin %> add-server work https://vpn.example.com:8443 --token-file ~/work-token',
    '<%= config.bin %> add-server work https://vpn.example.com:8443 --token "$(cat token)" --replace',
    '<%= config.bin %> add-server lab https://10.0.0.1:8443 --token-file ~/lab-token --ca-file lab-ca.pem',
  ];
  static override args = {
    name: Args.string({ description: 'Server name: 1 to 32 of A-Z a-z 0-9 _ -', required: true }),
    url: Args.string({ description: 'API URL of wirecagesrv (https://, or http:// on loopback or with --insecure-http)', required: true }),
  };
  static override flags = {
    token: Flags.string({ summary: 'Registration token of the server.', env: 'WIRECAGE_TOKEN', helpValue: 'TOKEN' }),
    'token-file': Flags.string({ summary: 'Read the registration token from FILE (mode 0600 or stricter).', helpValue: 'FILE' }),
    replace: Flags.boolean({ summary: 'Replace an existing NAME (and forget the server key and certificate pinned for it).' }),
    'insecure-http': Flags.boolean({ summary: 'Accept an http:// URL to a host other than loopback (the token travels in clear).' }),
    'ca-file': Flags.string({
      summary:
        "Trust the server's certificate when this CA (PEM) signed it, or it is this self-signed certificate; pins its fingerprint on the first run.",
      helpValue: 'FILE',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AddServer);
    if (!isServerName(args.name)) throw usageError(`server name "${args.name}" is not valid: use 1 to 32 of A-Z a-z 0-9 _ -`);
    let apiUrl: string;
    try {
      apiUrl = checkApiUrl(args.url);
    } catch (err) {
      if (!(err instanceof WirecageError)) throw err;
      throw usageError(err.message);
    }
    const u = new URL(apiUrl);
    if (u.protocol === 'http:' && !isLoopbackHost(u.hostname) && !flags['insecure-http']) {
      throw usageError(
        `${apiUrl}: plain HTTP to a host other than loopback would send the token in clear, and anyone on the path could answer as the server; use https:// (or --insecure-http on a network you trust)`,
      );
    }
    if (flags['ca-file'] !== undefined && u.protocol !== 'https:')
      throw usageError(`--ca-file is for an https:// URL: ${apiUrl} has no certificate to check`);
    if (flags['token-file'] !== undefined && this.argv.some((a) => a === '--token' || a.startsWith('--token='))) {
      throw usageError('--token and --token-file both give the token: give one of them');
    }
    // --token-file wins over WIRECAGE_TOKEN from the environment.
    const token = flags['token-file'] !== undefined ? readTokenFile(flags['token-file']) : (flags.token ?? '');
    const ca = flags['ca-file'] !== undefined ? readCaFile(flags['ca-file'], '--ca-file', '') : undefined;
    const cfg = loadServers();
    const old = cfg.servers.get(args.name);
    if (old && !flags.replace) {
      throw new WirecageError(
        `a server named "${args.name}" exists already (${old.apiUrl}); to replace it (and forget its pinned key): wirecage add-server ${args.name} ${apiUrl} --replace`,
      );
    }
    // A copy, not the path: the file given may be moved or changed later (by whoever can write
    // where it lies); the copy is in the config directory, 0700 and hidden in the cage.
    const caEntry = caFileEntryFor(args.name);
    const caCopy = resolveCaFile(cfg.file, caEntry);
    if (ca !== undefined) writeSecretFileAtomic(caCopy, ca);
    cfg.servers.set(args.name, { apiUrl, token, ...(ca !== undefined ? { caFile: caEntry } : {}) });
    saveServers(cfg);
    if (ca === undefined) rmSync(caCopy, { force: true });
    // The kept registration and the pins were for what NAME was before (or for a NAME removed earlier).
    // Every key slot's (servers/key-slot.ts): a run in slot 3 must not hold the old server's pin.
    for (let slot = 1; slot <= MAX_KEY_SLOTS; slot++) rmSync(keySlotFiles(args.name, slot).leaseFile, { force: true });
    process.stdout.write(
      `${old ? 'replaced' : 'added'} ${args.name} (${apiUrl}) in ${cfg.file}${ca !== undefined ? `, trusting the CA in ${caCopy}` : ''}\n`,
    );
  }
}
