// Cues that the path to the server may have changed under a working tunnel:
// the host's links, addresses or routes changed (netlink notifications in the
// namespace stage 2 runs in, the host's), or the machine slept (the wall clock
// ran ahead of the monotonic clock, which stops during suspend). Bursts are
// folded into one call: a Wi-Fi change sends dozens of notifications.
import { NetlinkMonitor } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';

export interface WakeOptions {
  log: Logger;
  /** Notifications closer than this are one change. */
  debounceMs?: number;
  /** How often the clocks are compared. */
  clockCheckMs?: number;
  /** A difference between the clocks' progress beyond this is a suspend (or the clock being set). */
  clockJumpMs?: number;
  /** Injectable for tests: wall and monotonic milliseconds. */
  wallNow?: () => number;
  monoNow?: () => number;
}

export interface Wake {
  stop(): void;
}

/** Calls `onWake(reasons)` once per burst of host network changes or clock jumps. */
export function watchWakeCues(onWake: (reasons: string[]) => void, opts: WakeOptions): Wake {
  const debounceMs = opts.debounceMs ?? 100;
  let pending: NodeJS.Timeout | null = null;
  let reasons = new Set<string>();
  const cue = (reason: string) => {
    reasons.add(reason);
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      const r = [...reasons];
      reasons = new Set();
      onWake(r);
    }, debounceMs);
    pending.unref();
  };

  let monitor: NetlinkMonitor | null = null;
  try {
    monitor = NetlinkMonitor.open(() => cue('the host network changed'), {
      onError: (err) => opts.log.warn(`watching the host network stopped: ${err.message}`),
    });
  } catch (err) {
    // Healing by timers and re-resolution still works: only the early handshake is lost.
    opts.log.warn(`cannot watch the host network for changes: ${(err as Error).message}`);
  }
  const clock = watchClockJumps(() => cue('the clock jumped (resume from suspend?)'), opts);
  return {
    stop() {
      monitor?.close();
      clock.stop();
      if (pending) clearTimeout(pending);
      pending = null;
    },
  };
}

/** A cheap timer that notices the wall clock moving differently from the monotonic one. */
export function watchClockJumps(onJump: (skewMs: number) => void, opts: WakeOptions): Wake {
  const wallNow = opts.wallNow ?? Date.now;
  const monoNow = opts.monoNow ?? (() => performance.now());
  const jumpMs = opts.clockJumpMs ?? 3000;
  let wall = wallNow();
  let mono = monoNow();
  const timer = setInterval(() => {
    const w = wallNow();
    const m = monoNow();
    const skew = w - wall - (m - mono);
    wall = w;
    mono = m;
    if (Math.abs(skew) > jumpMs) onJump(skew);
  }, opts.clockCheckMs ?? 2000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
