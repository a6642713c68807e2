// Where the registry lives: --state's SQLite file by default; --registry names
// another file or a fleet's postgres:// URL. A URL's password is a secret: on
// the command line or in the environment every user could read it, so there
// it is refused, and it comes from --registry-url-file or the systemd
// credential registry-url instead (or from libpq's own ~/.pgpass).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { usage } from '../api/admin-client.js';
import { isPostgresUrl } from '../registry/index.js';

export function registryLocation(flags: { registry?: string }, urlFile: string | undefined, statePath: string): string {
  if (flags.registry !== undefined && urlFile !== undefined) usage('give the registry once: --registry or --registry-url-file, not both');
  if (urlFile !== undefined) return urlFrom(urlFile);
  const given = flags.registry;
  if (given === undefined) return statePath;
  if (!isPostgresUrl(given)) return resolve(given);
  if (passwordOf(given)) {
    usage(
      '--registry carries a password, which argv and the environment show to others: put the URL in a file (--registry-url-file, or the credential registry-url)',
    );
  }
  return given;
}

function urlFrom(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    return usage(`--registry-url-file ${file}: ${(err as Error).message}`);
  }
  if (!isPostgresUrl(text)) usage(`--registry-url-file ${file} must hold one postgres:// (or postgresql://) URL`);
  return text;
}

/** A password in the userinfo (user:password@) or as a parameter; libpq's URLs may have no host (a unix socket), which WHATWG URL refuses. */
function passwordOf(url: string): boolean {
  const userinfo = /^postgres(?:ql)?:\/\/([^@/?#]*)@/i.exec(url)?.[1];
  return (userinfo !== undefined && userinfo.includes(':')) || /[?&]password=/i.test(url);
}
