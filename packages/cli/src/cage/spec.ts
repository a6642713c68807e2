// What stage 1 (the oclif command, unprivileged, host namespaces) hands to
// stage 2 (root inside the user namespace). It travels as JSON over a pipe on
// fd 3, never in argv or the environment, because it carries the private key.
import type { LogFormat } from '@wirecage/wg-engine';
import type { CageSeal } from './seal.js';
import type { ReRegistration } from '../servers/register.js';

export interface CagePeerSpec {
  publicKey: string; // base64
  presharedKey?: string; // base64
  /** Resolved numeric endpoint, "192.0.2.1:51820" or "[2001:db8::1]:51820". */
  endpoint?: string;
  /** The endpoint as the user wrote it, for messages. */
  endpointText?: string;
  allowedIps: string[];
  persistentKeepalive?: number;
}

export interface CageSpec {
  tun: string;
  mtu: number;
  privateKey: string; // base64
  listenPort?: number;
  addresses: string[];
  peers: CagePeerSpec[];
  /** null: leave the host's resolv.conf and nsswitch.conf as they are (--no-dns-override). */
  dns: { servers: string[]; search: string[] } | null;
  command: { file: string; args: string[] };
  env: Record<string, string>;
  cwd: string;
  waitHandshakeSeconds: number;
  /** Seconds of unanswered handshakes before an endpoint name is resolved again (heal.ts); 0: never. */
  reresolveAfterSeconds: number;
  /**
   * Once the command has ended, at most this long the cage's network (namespace and tunnel) stays
   * while TCP connections it closed still owe their peer data or a FIN; 0: torn down at once.
   */
  lingerSeconds: number;
  /** Drop to this user for the command (only when wirecage was started as root). */
  user?: { uid: number; gid: number; groups: number[] };
  /** Paths the command must not see: the key and config files, wirecage's config dir, host resolver sockets. */
  hide: string[];
  /** The command's own user namespace, private directories, shared paths and the cage's sysctls (seal.ts). */
  seal: CageSeal;
  /** Where the UAPI socket goes (`wirecage show`), owned by the invoking user. */
  runtimeDir: string;
  /** Serve Prometheus metrics of the tunnel here (host side): "host:port", "[v6]:port" or ":port". */
  metricsListen?: string;
  /**
   * Data-plane shard workers; 0 keeps the data path on the main thread. Each shard owns a TUN queue
   * and a UDP socket (one SO_REUSEPORT group on the port): max(workers, 1) of each.
   */
  workers: number;
  /** Open the TUN with offloads (virtio_net_hdr, TSO/USO); only with workers > 0. */
  offload: boolean;
  logLevel: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /** Stage 2's log records: text lines with an ISO timestamp, or one JSON object per line. */
  logFormat: LogFormat;
  /**
   * `run NAME` built the tunnel from a stored registration (keys/NAME.lease.json). When the handshake
   * with it fails (the server forgot the client), stage 2 drops that answer (keeping the pins),
   * registers again, once, and builds the tunnel from the new answer. Stage 2 and not stage 1: stage 1
   * has exec'd the cage by then, and stage 2 is still in the caller's network namespace, so it
   * reaches the API as stage 1 would. The command starts only after a handshake: never twice. This
   * carries the token, which, like the private key, travels only on fd 3.
   */
  reregister?: {
    server: ReRegistration;
    /** The run's --dns, --no-dns-override and --mtu, which win over the new answer as over the old. */
    dns?: string[];
    dnsOverride: boolean;
    mtu?: number;
  };
  /** Set by stage 2 on the spec it builds after registering again: the lease file, for messages. */
  registeredAgain?: string;
  /** Where the tunnel came from, for `wirecage ps`: the wg-quick file, the server NAME, or "--wg-* flags". */
  source?: string;
  /**
   * `run --name`: a cage others join (`wirecage exec`), listed by `ps`, ended by `stop`
   * (named-cage.ts). It lives while any process is in it, or with `keep` until `stop`.
   */
  named?: { name: string; keep: boolean };
  /**
   * `run NAME --publish ... --on-publish CMD`: the shell line stage 2 runs in the cage once the
   * command started (servers/on-publish.ts); the spec's env then holds the forwards.
   */
  onPublish?: string;
  /**
   * `run NAME`: the server to register with again when handshakes fail while the command runs
   * (servers/lease-recheck.ts). It holds the token, which, like the key, travels only on fd 3.
   */
  recheck?: ReRegistration;
  /** --flow-log: an absolute file path, or '-' for stderr (flow-log.ts). */
  flowLog?: string;
}

/** --linger's default: a FIN's acknowledgement takes a round trip, a closed upload's tail a few more. */
export const DEFAULT_LINGER_SECONDS = 2;

/** wirecage's own exit codes (the command's status passes through otherwise). */
export const EXIT_USAGE = 2;
export const EXIT_WIRECAGE_FAILED = 125;
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_NOT_FOUND = 127;

/**
 * Signals wirecage forwards to the command. The command has a session (and, when stdin is a
 * terminal, a pseudo-terminal) of its own, so the caller's terminal never signals it directly:
 * each of these reaches it only through wirecage.
 */
export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH'] as const;
