// A reload (SIGHUP, or POST /v1/reload): the files the server was started with
// are read again and served from now on — the TLS certificate and key, the
// token files (given by flag, or the credentials systemd copied), and the
// settings file (--config-file), whose egress policy, NAT flow limits,
// --register-rate and --log-level apply live. All of it is read and checked
// first; anything that cannot serve refuses the whole reload and the old
// settings keep serving. Flags and environment variables were read at start
// and stay (a running process cannot read them again): listen addresses,
// pools, NAT mode, --max-peers and the rest need a restart, and the answer
// says so. Nothing is rebuilt, so NAT flows, WireGuard sessions and forwards
// carry on; a new egress policy judges new flows only.
import type { RequestListener } from 'node:http';
import type { Logger } from '@wirecage/wg-engine';
import type { ApiServer, TlsFiles } from '../api/listen.js';
import { ReloadError, type ReloadAnswer } from '../api/reload.js';
import { changedSettings, type LiveSettings, type SettingsRead } from '../config/live-settings.js';
import type { SwitchableLogger } from '../config/logger.js';
import type { Nat } from '../nat/types.js';
import { notify, notifyReloading } from '../sd-notify.js';
import { readSecretFile } from './secret-flag.js';
import { tokenRefusal } from './tokens.js';

/** The files a reload reads; a token given as a value (flag or variable) has none and is kept. */
export interface ReloadSources {
  tls?: TlsFiles;
  authTokenFile?: string;
  adminTokenFile?: string;
}

export interface Secrets {
  authToken: string;
  adminToken: string | undefined;
}

/** The settings file a reload reads again, and what applies its live settings. */
export interface SettingsReload {
  file: string;
  /** Reads the file again: throws (file:line and name) when any of it is wrong. */
  read(): SettingsRead;
  nat: Pick<Nat, 'reconfigure'> | null;
  log: SwitchableLogger;
}

const RESTART_ONLY =
  'listen addresses, pools, --nat, --max-peers, --workers, --mtu, --lease, --dns, --dns-upstream, the forward ports, --trusted-proxy, --drain-timeout, --log-format and the server key';
const LIVE = '--allow-dest, --allow-lan, --max-flows, --max-flows-per-peer, --register-rate and --log-level';

export const NOT_RELOADED = [
  `flags and environment variables are read at start only: ${RESTART_ONLY}, and the egress policy and limits (${LIVE}) need a restart unless they are given in a settings file (--config-file), which a reload reads again`,
];

/** The not-reloaded sentences of a server with a settings file. */
function notReloadedWith(file: string): string[] {
  return [
    `flags and environment variables are read at start only, and pin the settings they give; ${file} is read again: its ${LIVE} apply now, ${RESTART_ONLY} need a restart`,
  ];
}

export interface ReloaderOptions {
  sources: ReloadSources;
  api: ApiServer;
  secrets: Secrets;
  settings: LiveSettings;
  settingsFile?: SettingsReload;
  handlerFor: (s: Secrets, live: LiveSettings) => RequestListener;
  log: Logger;
}

/**
 * The reload of a running API: `handlerFor` builds the API's handler for a set of tokens and live
 * settings. Reloads run one at a time; the returned function resolves to the answer or rejects with a ReloadError.
 */
export function reloader(o: ReloaderOptions): (trigger: string) => Promise<ReloadAnswer> {
  let served = o.secrets;
  let live = o.settings;
  let queue: Promise<unknown> = Promise.resolve();
  const file = o.settingsFile;
  const once = async (trigger: string): Promise<ReloadAnswer> => {
    notifyReloading();
    try {
      const read = file ? readFile(file) : { next: live, notes: [] };
      const next = readSecrets(o.sources, served);
      const reloaded = reReadNames(o.sources, file);
      // The steps that can still fail, the NAT's first: it is the one that can be undone.
      const nat = await reconfigureNat(file, read.next, live);
      if (o.sources.tls) await reloadTls(o, o.sources.tls, nat.undo);
      const nextLive = nat.live;
      const changed = [
        ...(next.authToken !== served.authToken ? ['auth-token'] : []),
        ...(next.adminToken !== served.adminToken ? ['admin-token'] : []),
        ...changedSettings(live, nextLive),
      ];
      file?.log.setLevel(nextLive.logLevel);
      o.api.setHandler(o.handlerFor(next, nextLive));
      served = next;
      live = nextLive;
      const answer: ReloadAnswer = {
        status: 'reloaded',
        reloaded,
        changed,
        not_reloaded: [...(file ? notReloadedWith(file.file) : NOT_RELOADED), ...read.notes, ...nat.notes],
      };
      logReloaded(o.log, trigger, answer, live);
      return answer;
    } catch (err) {
      o.log.error(`reload (${trigger}) refused, serving on with what was loaded before: ${(err as Error).message}`);
      throw err;
    } finally {
      notify('READY=1');
    }
  };
  return (trigger) => {
    const run = queue.then(() => once(trigger));
    queue = run.catch(() => {});
    return run;
  };
}

/** What a reload reads again, as the answer names it. */
function reReadNames(sources: ReloadSources, file: SettingsReload | undefined): string[] {
  return [
    ...(sources.tls ? ['tls'] : []),
    ...(sources.authTokenFile ? ['auth-token'] : []),
    ...(sources.adminTokenFile ? ['admin-token'] : []),
    ...(file ? ['settings'] : []),
  ];
}

/** Serves the certificate and key read again; when they cannot serve, the NAT goes back to what it was and the reload is refused. */
async function reloadTls(o: ReloaderOptions, tls: TlsFiles, undoNat: (() => Promise<unknown>) | undefined): Promise<void> {
  try {
    o.api.reloadTls(tls);
  } catch (err) {
    if (undoNat) await undoNat().catch((e: Error) => o.log.error(`reload: cannot put the NAT's previous settings back: ${e.message}`));
    throw new ReloadError((err as Error).message);
  }
}

function logReloaded(log: Logger, trigger: string, a: ReloadAnswer, live: LiveSettings): void {
  log.info(
    `reloaded (${trigger}): ${a.reloaded.length ? a.reloaded.join(', ') : 'nothing to re-read'}${a.changed.length ? `; changed: ${a.changed.join(', ')}` : ''}`,
  );
  log.debug(`settings in force: ${JSON.stringify(live)}`);
  for (const n of a.not_reloaded) log.info(`not reloaded: ${n}`);
}

function readFile(file: SettingsReload): SettingsRead {
  try {
    return file.read();
  } catch (err) {
    throw new ReloadError((err as Error).message);
  }
}

/** The NAT given the new policy and limits (when they changed): the settings now in force, and how to go back. */
async function reconfigureNat(
  file: SettingsReload | undefined,
  next: LiveSettings,
  live: LiveSettings,
): Promise<{ live: LiveSettings; notes: string[]; undo?: () => Promise<unknown> }> {
  const nat = file?.nat;
  const natPart = (s: LiveSettings) => ({
    allowLan: s.allowLan,
    allowDest: s.allowDest,
    maxFlows: s.maxFlows,
    maxFlowsPerPeer: s.maxFlowsPerPeer,
  });
  if (!nat || JSON.stringify(natPart(next)) === JSON.stringify(natPart(live)))
    return { live: nat ? next : { ...next, ...natPart(live) }, notes: [] };
  let r;
  try {
    r = await nat.reconfigure(natPart(next));
  } catch (err) {
    throw new ReloadError((err as Error).message);
  }
  return { live: { ...next, ...r.applied }, notes: r.notes, undo: () => nat.reconfigure(natPart(live)) };
}

/** The tokens from their files (the served ones where there is no file), held to the rules of a start. */
function readSecrets(s: ReloadSources, served: Secrets): Secrets {
  let next: Secrets;
  try {
    next = {
      authToken: s.authTokenFile ? readSecretFile(s.authTokenFile, 'token') : served.authToken,
      adminToken: s.adminTokenFile ? readSecretFile(s.adminTokenFile, 'admin token') : served.adminToken,
    };
  } catch (err) {
    throw new ReloadError((err as Error).message);
  }
  const wrong = tokenRefusal(next.authToken, next.adminToken);
  if (wrong) throw new ReloadError(wrong);
  return next;
}
