// POST /v1/reload, with the admin token: the server reads its files again
// (TLS certificate and key, token files, settings file) as SIGHUP makes it do, and answers
// what it re-read and changed, or 422 with why it refused (it then serves
// on with what it had). `wirecagesrv reload` is its client.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';
import { isAdmin, routeLimit } from './caller.js';
import { sendJson } from './json.js';

/** The answer of a reload that went through. */
export interface ReloadAnswer {
  status: 'reloaded';
  /** What was read again: "tls", "auth-token", "admin-token", "settings" (the --config-file). */
  reloaded: string[];
  /** Which of those differ from what was served before; for the settings file, the flags whose value changed ("allow-dest", "log-level"...). */
  changed: string[];
  /** What a running server does not re-read, and why (each a sentence for the operator). */
  not_reloaded: string[];
}

/** A reload refused: nothing of it was applied. */
export class ReloadError extends Error {
  override name = 'ReloadError';
}

export function reloadHandler(
  adminToken: string | undefined,
  reload: () => Promise<ReloadAnswer>,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  // Reloads are rare: the limit is there for guesses at the admin token.
  const limit = routeLimit(undefined, 'reload requests', { burst: 10, perMinute: 10 });
  return async (req, res) => {
    limit(req);
    if (adminToken === undefined)
      throw new HttpError(404, 'this server has no admin token (up --admin-token-file), so it reloads on SIGHUP only (systemctl reload)');
    if (!isAdmin(req, adminToken))
      throw new HttpError(401, 'invalid token: reloading needs the admin token', { 'www-authenticate': 'Bearer error="invalid_token"' });
    let answer;
    try {
      answer = await reload();
    } catch (err) {
      if (err instanceof ReloadError) throw new HttpError(422, err.message);
      throw err;
    }
    sendJson(res, 200, answer);
  };
}
