// The admin's side of a running server's API, for the `peers` commands: the
// flags that say where the API is and where the admin token is kept, and one
// JSON request at a time. The token is read from a file (never argv, which
// other users can see) and sent as `Authorization: Bearer`.
//
// Exit status: 1 when the request fails (no answer, or the server's own
// {"error"} with its HTTP status), 2 for a usage error (bad flags, no token).
// Lives outside src/commands/ because oclif takes every module there for a command.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Errors, Flags } from '@oclif/core';
import { fail } from '../fail.js';
import { adoptLegacyEnv, withEnv } from '../env.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:8443';
const TIMEOUT_MS = 10_000;
const MAX_ANSWER = 16 * 1024 * 1024;

export const adminFlags = withEnv({
  api: Flags.string({
    default: DEFAULT_API_URL,
    helpValue: 'URL',
    summary: "The running server's API (its --api-listen), http:// or https://.",
  }),
  'admin-token-file': Flags.string({
    helpValue: 'FILE',
    summary: 'File holding the admin token (the one given to `up --admin-token-file`). Required.',
  }),
  'ca-file': Flags.string({
    helpValue: 'FILE',
    summary: "PEM certificate(s) an https:// API is verified against, in place of the system's trusted ones.",
  }),
});

/** For a command with adminFlags, before it parses them: the old variable names, with a warning each. */
export function adoptAdminLegacyEnv(): void {
  for (const w of adoptLegacyEnv(process.env, Object.keys(adminFlags))) process.stderr.write(`wirecagesrv: warning: ${w}\n`);
}

export interface AdminFlags {
  api: string;
  'admin-token-file'?: string;
  'ca-file'?: string;
}

/** Ends the command with exit status 2 and one plain line on stderr. */
export function usage(message: string): never {
  process.stderr.write(`wirecagesrv: ${message}\n`);
  throw new Errors.ExitError(2);
}

export class AdminClient {
  private constructor(
    private readonly base: URL,
    private readonly token: string,
    private readonly ca: Buffer | undefined,
  ) {}

  /** Checks the flags and reads the token and CA files; a usage error (exit 2) when one is wrong. */
  static fromFlags(flags: AdminFlags): AdminClient {
    let base: URL;
    try {
      base = new URL(flags.api);
    } catch {
      return usage(`--api "${flags.api}" is not a URL; give one such as ${DEFAULT_API_URL}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') usage(`--api "${flags.api}" must be an http:// or https:// URL`);
    const ca = flags['ca-file'];
    if (ca !== undefined && base.protocol !== 'https:') usage(`--ca-file verifies an https:// API; --api is ${base.href}`);
    const tokenFile = flags['admin-token-file'];
    if (tokenFile === undefined)
      usage(
        'the admin token is required: --admin-token-file FILE (or WIRECAGESRV_ADMIN_TOKEN_FILE), the file given to `wirecagesrv up --admin-token-file`',
      );
    const token = readOrUsage(tokenFile, 'admin token file').toString('utf8').trim();
    if (token === '') usage(`the admin token file ${tokenFile} is empty`);
    return new AdminClient(base, token, ca === undefined ? undefined : readOrUsage(ca, 'CA file'));
  }

  /** The URL of a route (after any path prefix of --api, for a server behind a reverse proxy). */
  url(route: string): string {
    const u = new URL(this.base.href);
    u.pathname = u.pathname.replace(/\/+$/, '') + route;
    u.search = '';
    u.hash = '';
    return u.href;
  }

  /** The JSON object of a 2xx answer; otherwise ends the command with exit status 1 and the reason. */
  async request(
    method: 'GET' | 'DELETE' | 'POST',
    route: string,
    body: Record<string, unknown> | undefined,
    doing: string,
  ): Promise<Record<string, unknown>> {
    const url = this.url(route);
    const text = body === undefined ? undefined : JSON.stringify(body);
    let answer: { status: number; text: string };
    try {
      answer = await this.send(method, url, text);
    } catch (err) {
      return fail(`cannot ${doing} at ${url}: ${(err as Error).message}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(answer.text);
    } catch {
      value = undefined;
    }
    const object = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    if (answer.status < 200 || answer.status > 299) {
      const why = typeof object?.error === 'string' ? object.error : answer.text.trim().slice(0, 200);
      return fail(`${url} refused to ${doing}: HTTP ${answer.status}${why ? `: ${why}` : ''}`);
    }
    if (!object) return fail(`${url}: the answer is not a JSON object (is --api a wirecagesrv API?)`);
    return object;
  }

  private send(method: string, url: string, body: string | undefined): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${this.token}` };
    if (body !== undefined)
      Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    return new Promise((resolve, reject) => {
      const onAnswer = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER) res.destroy(new Error(`the answer is larger than ${MAX_ANSWER} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      };
      const req = url.startsWith('https:')
        ? https.request(url, { method, headers, ca: this.ca, agent: false }, onAnswer)
        : http.request(url, { method, headers, agent: false }, onAnswer);
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(err.code && !err.message.includes(err.code) ? new Error(`${err.code}: ${err.message}`) : err),
      );
      req.end(body);
    });
  }
}

function readOrUsage(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    return usage(`cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}
