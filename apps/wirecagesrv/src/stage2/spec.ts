// What `up` (stage 1: the oclif command, host namespaces, the caller's
// privileges) hands to stage 2 (root in a user namespace of its own). It
// travels as JSON over a pipe on fd 3, never in argv or the environment,
// because it carries the private key and the registration token. The bound
// sockets travel as inherited fds, named here by number.
import type { LogFormat, LogLevel } from '@wirecage/wg-engine';
import type { TlsFiles } from '../api/listen.js';
import type { ListenAddress } from '../listen.js';
import type { NatOptions } from '../nat/index.js';
import type { PortRange } from '../forwards/index.js';
import type { NotifyTarget } from '../sd-notify.js';
import type { SettingsOrigin } from '../config/live-settings.js';

export interface ServerSpec {
  privateKey: string; // base64
  authToken: string;
  wgEndpoint: string;
  /** Every endpoint clients are told (wgEndpoint first). */
  wgEndpoints?: string[];
  /** As given, for messages; the sockets are already bound. */
  wgListen: ListenAddress;
  apiListen: ListenAddress;
  /** wg: the WireGuard port's sockets, one per data-plane shard (one SO_REUSEPORT group when several). */
  fds: { api: number; wg: number[] };
  tls?: TlsFiles;
  statePath: string;
  /** The registry: statePath, another file, or a postgres:// URL (its password travels only here, on fd 3). */
  registry?: string;
  nodeName?: string;
  subnet?: string;
  subnet6?: string;
  mtu: number;
  maxPeers: number;
  dns?: string[];
  adminToken?: string;
  /** The files the tokens came from (flag or credential), read again on reload; absent for a token given as a value. */
  tokenFiles?: { auth?: string; admin?: string };
  /** --drain-timeout in ms: how long a stop lets the API's requests in flight finish. */
  drainTimeoutMs?: number;
  forwardListenAddress?: string;
  /** The public ports forwards may take (--forward-ports). */
  forwardPorts?: PortRange;
  nat: NatOptions;
  /** Prometheus metrics address, if any. */
  metricsListen?: string;
  /** Data-plane shard workers (0: the main thread carries the data). */
  workers: number;
  /** Registration attempts per source in a burst and per minute (--register-rate). */
  registerRate?: number;
  /** Reverse proxies believed about the client (--trusted-proxy CIDRs). */
  trustedProxies?: string[];
  /** Registration lease in ms (--lease). */
  leaseMs?: number;
  logLevel: LogLevel;
  /** --log-format; stage 1 and stage 2 write the same kind of line. */
  logFormat: LogFormat;
  /** The settings file (--config-file) a reload reads again, and what argv and the environment pinned at start. */
  settings?: SettingsOrigin;
  /** Where systemd hears from us when `up` runs as a Type=notify unit (sd-notify.ts); none outside systemd. */
  notify?: NotifyTarget;
}

/** Stage 2 exits 1 after printing why it could not start (or stopped); 0 after a signal asked it to stop. */
export const EXIT_FAILED = 1;
/** wirecage-userns's own status when it cannot make the user namespace. */
export const EXIT_USERNS_FAILED = 125;
