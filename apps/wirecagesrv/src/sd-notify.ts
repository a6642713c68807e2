// sd_notify(3) for the systemd unit (Type=notify): READY=1 once the server
// serves, STOPPING=1 when it starts stopping, WATCHDOG=1 every half of
// $WATCHDOG_USEC, RELOADING=1 for a reload. Stage 1 (`up`, the unit's main
// process) only finds the socket; stage 2, the process that knows when the
// server is ready and whose event loop the watchdog should watch, sends.
// systemd takes notifications from another process than the main one only
// with NotifyAccess=all, which the unit sets (see systemd/wirecagesrv.service).
import { sendUnixDatagram } from '@wirecage/netns';
import { silentLogger, type Logger } from '@wirecage/wg-engine';

/** What stage 1 hands stage 2 in its spec. */
export interface NotifyTarget {
  /** $NOTIFY_SOCKET: a path, or '@name' for an abstract socket. */
  socket: string;
  /** $WATCHDOG_USEC, when systemd asked for keep-alives. */
  watchdogUsec?: number;
}

/**
 * Stage 1: the notification socket systemd gave, and the watchdog interval if it is for this
 * process ($WATCHDOG_PID names it, or is absent). Removes the variables, as sd_notify's
 * unset_environment does, so that nothing this process starts takes them for its own.
 */
export function notifyTargetFromEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): NotifyTarget | undefined {
  const socket = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!socket) return undefined;
  return { socket, watchdogUsec: forUs && Number.isSafeInteger(usec) && usec > 0 ? usec : undefined };
}

let target: NotifyTarget | undefined;
let log: Logger = silentLogger;
let failing = false;
let watchdog: NodeJS.Timeout | undefined;

/** Stage 2: where notify() sends from now on (nothing when undefined: not under systemd). */
export function configureNotify(t: NotifyTarget | undefined, logger: Logger): void {
  target = t;
  log = logger;
}

/**
 * Sends one notification ("READY=1", "STOPPING=1", "STATUS=...", several joined by newlines); does
 * nothing when not under systemd. A failure is logged once until a send works again, never thrown:
 * the server keeps serving without its supervisor's bookkeeping.
 */
export function notify(state: string): void {
  if (!target) return;
  try {
    sendUnixDatagram(target.socket, Buffer.from(state));
    failing = false;
  } catch (err) {
    if (!failing) log.warn(`cannot notify systemd at ${target.socket} (${state.split('\n')[0]}): ${(err as Error).message}`);
    failing = true;
  }
}

/** RELOADING=1 with the CLOCK_MONOTONIC time systemd 253's Type=notify-reload asks for; READY=1 ends the reload. */
export function notifyReloading(): void {
  notify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
}

/** WATCHDOG=1 every half of $WATCHDOG_USEC from this event loop, when systemd asked for it; stopped by notifyStopping(). */
export function startWatchdog(): void {
  if (!target?.watchdogUsec || watchdog) return;
  const every = Math.max(1, Math.floor(target.watchdogUsec / 2000));
  watchdog = setInterval(() => notify('WATCHDOG=1'), every);
  watchdog.unref();
}

export function notifyStopping(): void {
  if (watchdog) clearInterval(watchdog);
  watchdog = undefined;
  notify('STOPPING=1');
}
