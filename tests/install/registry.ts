// A local npm registry (verdaccio, on 127.0.0.1) for the install test:
// installing tarballs that depend on each other needs a registry that holds
// them all. The packages named `local` are served only from what the test
// publishes; every other package comes from the registry npm is configured
// with, as it would for a user.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../lib/netns.js';
import { LabProcess } from '../lib/process.js';
import { waitFor } from '../lib/wait.js';
import { writeSecretFile } from '../lib/wg.js';

const VERDACCIO = fileURLToPath(new URL('./fixtures/verdaccio.mjs', import.meta.url));

export interface LocalRegistry {
  url: string;
  /** An npm userconfig holding this registry's publish token (0600). */
  npmrc: string;
  process: LabProcess;
}

/** What verdaccio needs from this environment to reach the upstream registry (proxy, extra CAs). */
function upstreamEnv(): NodeJS.ProcessEnv {
  const keep = /^(PATH|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => keep.test(k)));
}

export async function startLocalRegistry(
  lab: Lab,
  opts: { upstream: string; local: readonly string[]; startTimeoutMs: number },
): Promise<LocalRegistry> {
  const dir = await lab.tempDir();
  const open = { access: '$all', publish: '$all' };
  const packages: Record<string, unknown> = Object.fromEntries(opts.local.map((name) => [name, open]));
  packages['**'] = { access: '$all', proxy: 'upstream' };
  const config = {
    storage: join(dir, 'storage'),
    auth: { htpasswd: { file: join(dir, 'htpasswd') } },
    // verdaccio takes an uplink offline for fail_timeout after max_fails failed requests in a row
    // (default: 2, for 5 minutes), and then answers 404 for every package it has not cached: one
    // slow answer from the upstream on a loaded machine failed a whole install. Retry instead.
    uplinks: { upstream: { url: opts.upstream, timeout: '60s', max_fails: 50, fail_timeout: '2s' } },
    packages,
    web: { enable: false },
    log: { type: 'stdout', format: 'pretty', level: 'warn' },
  };
  // JSON is YAML, which is what verdaccio reads.
  const configFile = join(dir, 'config.yaml');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const proc = new LabProcess(process.execPath, [VERDACCIO, configFile], { env: { ...upstreamEnv(), HOME: dir }, cwd: dir });
  lab.onTeardown(async () => {
    await proc.stop();
  });
  const url = await waitFor(
    () => {
      proc.assertRunning();
      return /^listening (http:\/\/127\.0\.0\.1:\d+)$/m.exec(proc.output())?.[1];
    },
    { what: 'verdaccio to listen on 127.0.0.1', timeoutMs: opts.startTimeoutMs, describe: () => proc.describe() },
  );

  // npm publishes only with a token: verdaccio hands one out when a user is added.
  const user = `ci${randomBytes(4).toString('hex')}`;
  const res = await fetch(`${url}/-/user/org.couchdb.user:${user}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: user, password: randomBytes(16).toString('hex') }),
  });
  const body = (await res.json()) as { token?: string; error?: string };
  if (!res.ok || typeof body.token !== 'string')
    throw new Error(`verdaccio refused to add user ${user}: ${res.status} ${body.error ?? ''}`);
  const npmrc = await writeSecretFile(
    dir,
    'npmrc',
    [
      `registry=${url}/`,
      `${url.replace(/^http:/, '')}/:_authToken=${body.token}`,
      'update-notifier=false',
      'fund=false',
      'audit=false',
      'fetch-retries=5',
      'fetch-retry-mintimeout=2000',
      '',
    ].join('\n'),
  );
  return { url, npmrc, process: proc };
}

/**
 * npm with nothing of this machine's npm setup: the given userconfig, an empty globalconfig, its own
 * cache and home, and exactly `path` as PATH.
 */
export function isolatedNpmEnv(o: {
  path: string;
  home: string;
  userconfig: string;
  globalconfig: string;
  cache: string;
}): NodeJS.ProcessEnv {
  return {
    PATH: o.path,
    HOME: o.home,
    npm_config_userconfig: o.userconfig,
    npm_config_globalconfig: o.globalconfig,
    npm_config_cache: o.cache,
  };
}
