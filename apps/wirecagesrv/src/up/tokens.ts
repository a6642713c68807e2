// The registration token (required) and the admin token (optional), each held
// to what it protects.
import type { Logger } from '@wirecage/wg-engine';
import { fail } from '../fail.js';
import { usage } from '../api/admin-client.js';
import { envName } from '../env.js';
import { readSecretFlag } from './secret-flag.js';

export interface TokenFlags {
  'auth-token'?: string;
  'auth-token-file'?: string;
  'admin-token'?: string;
  'admin-token-file'?: string;
}

export function readTokens(flags: TokenFlags, log: Logger): { authToken: string; adminToken: string | undefined } {
  const authToken = readSecretFlag({ what: 'token', flag: 'auth-token' }, flags['auth-token'], flags['auth-token-file']);
  if (authToken === undefined)
    usage(
      `a registration token is required: --auth-token-file FILE (or ${envName('auth-token-file')}), ${envName('auth-token')}, or the credential auth-token`,
    );
  const adminToken = readSecretFlag({ what: 'admin token', flag: 'admin-token' }, flags['admin-token'], flags['admin-token-file']);
  const wrong = tokenRefusal(authToken, adminToken);
  if (wrong) fail(wrong);
  if (authToken.length < 16) log.warn('the registration token is shorter than 16 characters; a longer random one resists guessing');
  return { authToken, adminToken };
}

/** Why the tokens cannot serve, or null: the rules a start and a reload hold them to. */
export function tokenRefusal(authToken: string, adminToken: string | undefined): string | null {
  if (authToken.length === 0) return 'the registration token is empty';
  if (adminToken !== undefined && adminToken.length < 16)
    return 'the admin token must be at least 16 characters: it manages every port forward';
  if (adminToken !== undefined && adminToken === authToken)
    return 'the admin token must differ from the registration token, which every client holds';
  return null;
}
