// A tunnel that heals: after the first handshake, stage 2 keeps the tunnel
// following the server and the host. Two mechanisms, both outside the cage
// (the caged program's sockets and addresses never change):
// - handshakes unanswered for --reresolve-after seconds: the peer moves to its
//   next candidate address (heal-candidates.ts: every address of every endpoint
//   it may use, names resolved again on the host's resolver), so a server whose
//   name moved is followed and a fleet's dead node is left for another
//   (heal-resolve.ts);
// - the host's network changed or the machine resumed (heal-wake.ts): a
//   handshake starts at once instead of after the next retry timer, so a
//   stale session or a NAT mapping that vanished costs one round trip;
// - with a server name, the same unanswered handshakes also re-check the
//   registration (`recheck`, servers/lease-recheck.ts): a server that forgot
//   the client (removed, lease ended, registry lost) knows it again.
// The state (up or handshaking, since when, the last error) is what
// `wirecage show` and `ps` print: `onChange` hands it on (heal-cage.ts).
import { REKEY_TIMEOUT, keyToBase64, type Device, type Logger, type Peer } from '@wirecage/wg-engine';
import { hasNames } from './heal-candidates.js';
import { moveToNext, type Lookup } from './heal-resolve.js';
import { watchWakeCues, type WakeOptions } from './heal-wake.js';

export interface HealPeer {
  peer: Peer;
  /** The endpoint as configured ("vpn.example.org:51820"); a name is resolved again, an address never. */
  endpoint?: string;
  /**
   * Every endpoint the peer may fail over to, in order (a server's answer's server_endpoints, read
   * again at each move); default: `endpoint` alone.
   */
  endpoints?: () => readonly string[];
}

export interface HealOptions {
  log: Logger;
  /** Seconds of unanswered handshakes before the peer moves to its next candidate address; 0: never. */
  reresolveAfterSeconds: number;
  /** Injectable for tests. */
  lookup?: Lookup;
  wake?: Partial<WakeOptions>;
  /**
   * Called with re-resolution, once per period while handshakes fail: registers again with the
   * server. Resolves true when a handshake is worth starting at once; rejects with why it failed.
   */
  recheck?: () => Promise<boolean>;
  /** Called with every peer's state whenever one changes. */
  onChange?: (health: PeerHealth[]) => void;
}

/** What `wirecage ps` would show per peer. */
export interface PeerHealth {
  peer: string;
  /** Base64: what `show` matches its peers on. */
  publicKey: string;
  endpoint: string | null;
  state: 'up' | 'handshaking';
  /** Wall-clock ms of the handshake that began the current run of good ones; null while handshaking. */
  upSince: number | null;
  /** The last failure seen (kept once the tunnel is up again, upSince saying since when); null before any. */
  lastError: string | null;
}

export interface Healing {
  health(): PeerHealth[];
  stop(): void;
}

/** Forced handshakes (which skip the engine's one-per-Rekey-Timeout limit) are at least this far apart. */
const MIN_FORCED_GAP_MS = 1000;

class PeerHealer {
  /** Monotonic ms of the first unanswered initiation since the last handshake, or null. */
  private failingSince: number | null = null;
  private lastComplete: number;
  private upSince: number | null;
  private lastError: string | null = null;
  private lookingUp = false;
  private rechecking = false;
  /** The current run of unanswered handshakes lasted a whole --reresolve-after: an outage, however short. */
  private outage = false;
  private lastForced = -Infinity;
  private lastLookup = -Infinity;
  /** Monotonic ms of the last move to another address. */
  private movedAt = -Infinity;
  /** The addresses tried since the last handshake (heal-candidates.ts). */
  private readonly tried = new Set<string>();
  private deferred: NodeJS.Timeout | null = null;

  constructor(
    readonly hp: HealPeer,
    private readonly device: Device,
    private readonly opts: HealOptions,
  ) {
    this.lastComplete = device.clock.now();
    this.upSince = hp.peer.lastHandshakeWallMs || device.clock.wallNow();
  }

  handshakeComplete(): void {
    const now = this.device.clock.now();
    // A rekey answered within its first try is not an outage worth a line or a new "up since".
    if (this.failingSince !== null && (this.outage || now - this.failingSince >= REKEY_TIMEOUT * 1000)) {
      this.opts.log.info(
        `peer ${this.hp.peer.name}: handshake with ${this.hp.peer.endpoint?.toString() ?? '?'} after ${Math.round((now - this.failingSince) / 1000)} s without`,
      );
      this.upSince = this.device.clock.wallNow();
    }
    this.failingSince = null;
    this.outage = false;
    this.tried.clear();
    this.lastComplete = now;
  }

  /** Called every tick: notices a run of unanswered handshakes and moves the peer when it has lasted long enough. */
  tick(): void {
    const peer = this.hp.peer;
    const now = this.device.clock.now();
    if (this.failingSince === null) {
      if (peer.lastSentHandshake <= this.lastComplete) return;
      this.failingSince = peer.lastSentHandshake;
    }
    const afterMs = this.opts.reresolveAfterSeconds * 1000;
    if (afterMs === 0 || this.lookingUp || now - this.lastLookup < afterMs || now - this.failingSince < afterMs) return;
    this.outage = true;
    this.lastError = `no handshake with ${peer.endpoint?.toString() ?? this.hp.endpoint} for ${Math.round((now - this.failingSince) / 1000)} s`;
    // The next look-up is another full period away, however long this one takes.
    this.lastLookup = now;
    this.recheck();
    const endpoints = this.endpoints();
    if (endpoints.length <= 1 && !hasNames(endpoints)) {
      this.opts.log.debug(`peer ${peer.name}: ${this.lastError}; its endpoint is an address, not a name: nothing to resolve again`);
      return;
    }
    this.lookingUp = true;
    const failedForS = Math.round((now - Math.max(this.failingSince, this.movedAt)) / 1000);
    void moveToNext(peer, endpoints, failedForS, this.opts.log, { resolve: this.opts.lookup, tried: this.tried })
      .then(({ moved, error }) => {
        if (error) this.lastError = error;
        if (!moved) return;
        this.movedAt = this.device.clock.now();
        this.handshakeNow();
      })
      .finally(() => {
        this.lookingUp = false;
      });
  }

  private endpoints(): readonly string[] {
    const own = this.hp.endpoint === undefined ? [] : [this.hp.endpoint];
    return this.hp.endpoints?.() ?? own;
  }

  private recheck(): void {
    const recheck = this.opts.recheck;
    if (!recheck || this.rechecking) return;
    this.rechecking = true;
    recheck()
      .then(
        (again) => {
          if (again) this.handshakeNow();
        },
        (err: Error) => {
          this.lastError = `re-checking the registration: ${err.message}`;
          this.opts.log.info(`peer ${this.hp.peer.name}: ${this.lastError} (trying again later)`);
        },
      )
      .finally(() => {
        this.rechecking = false;
      });
  }

  handshakeNow(): void {
    const peer = this.hp.peer;
    if (!peer.endpoint || !peer.isUp) return;
    const now = this.device.clock.now();
    const wait = this.lastForced + MIN_FORCED_GAP_MS - now;
    if (wait > 0) {
      // A second change right after the first (a link up, then its address) may be the one that
      // matters: it gets its handshake too, once the gap has passed.
      this.deferred ??= setTimeout(() => {
        this.deferred = null;
        this.handshakeNow();
      }, wait).unref();
      return;
    }
    this.lastForced = now;
    // One sent just before the change went out on the old path: this one may not wait for it.
    this.device.initiateHandshake(peer, { force: true });
  }

  stop(): void {
    if (this.deferred) clearTimeout(this.deferred);
    this.deferred = null;
  }

  health(): PeerHealth {
    return {
      peer: this.hp.peer.name,
      publicKey: keyToBase64(this.hp.peer.publicKey),
      endpoint: this.hp.peer.endpoint?.toString() ?? null,
      state: this.failingSince === null ? 'up' : 'handshaking',
      upSince: this.failingSince === null ? this.upSince : null,
      lastError: this.lastError,
    };
  }
}

/** Starts healing the device's tunnels; stop() before the device closes. */
export function startHealing(device: Device, peers: HealPeer[], opts: HealOptions): Healing {
  const healers = peers.filter((p) => p.peer.endpoint).map((p) => new PeerHealer(p, device, opts));
  const byPeer = new Map(healers.map((h) => [h.hp.peer, h]));
  let shown = '';
  const changed = () => {
    if (!opts.onChange) return;
    const health = healers.map((h) => h.health());
    const text = JSON.stringify(health);
    if (text === shown) return;
    shown = text;
    opts.onChange(health);
  };
  const onHandshake = (peer: Peer) => {
    byPeer.get(peer)?.handshakeComplete();
    changed();
  };
  device.on('handshake-complete', onHandshake);
  const afterMs = opts.reresolveAfterSeconds * 1000;
  // Fine enough to re-resolve within a few percent of the period, never busier than 4 times a second.
  const tick = setInterval(
    () => {
      healers.forEach((h) => h.tick());
      changed();
    },
    Math.max(250, Math.min(1000, afterMs / 8 || 1000)),
  );
  tick.unref();
  changed();
  const wake = watchWakeCues(
    (reasons) => {
      opts.log.info(`${reasons.join('; ')}: starting a handshake`);
      for (const h of healers) h.handshakeNow();
    },
    { log: opts.log, ...opts.wake },
  );
  return {
    health: () => healers.map((h) => h.health()),
    stop() {
      clearInterval(tick);
      wake.stop();
      for (const h of healers) h.stop();
      device.off('handshake-complete', onHandshake);
    },
  };
}
