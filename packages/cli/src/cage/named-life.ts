// When a named cage ends. It lives while its first command runs, a joined
// session is open (the control connection of `wirecage exec`), or any other
// process is in its pid namespace (a daemon whose parent exited), or with
// --keep until `wirecage stop`. "Any process in it" is counted from here
// (cageProcesses, by namespace inode in /proc) when something may have
// changed: the first command or a session ended, or a process we watch (by
// pidfd) exited. Between those, nothing is polled.
import { closeSync } from 'node:fs';
import { CagedProcess, pidfdOpen, watchExit } from '@wirecage/netns';
import { cageProcesses, nsInode } from './named.js';

export class CageLife {
  private first = true;
  private sessions = 0;
  private stopping: Promise<void> | null = null;
  private ending = false;
  private readonly watched = new Map<number, { stop(): void }>();
  /** Resolves when the cage is to end: nothing left in it, stopped, or its holder gone. */
  readonly ended: Promise<void>;
  private markEnded!: () => void;
  private readonly over: Promise<void>;
  private markOver!: () => void;

  constructor(
    /** The inode of the cage's pid namespace. */
    private readonly pidns: number,
    /** wirecage's own processes in it (init, the holder): not counted. */
    private readonly own: readonly number[],
    private readonly keep: boolean,
  ) {
    this.ended = new Promise<void>((resolve) => {
      this.markEnded = () => {
        this.ending = true;
        resolve();
      };
    });
    this.over = new Promise<void>((resolve) => (this.markOver = resolve));
  }

  get firstRunning(): boolean {
    return this.first;
  }

  /** The cage ends now, whatever is in it (the holder is gone). */
  end(): void {
    this.markEnded();
  }

  /** Everything is torn down: stop()'s callers get their answer. */
  torndown(): void {
    this.markOver();
  }

  /** Counts a joining session; false when the cage is ending. */
  join(): boolean {
    if (this.stopping || this.ending) return false;
    this.sessions++;
    return true;
  }

  sessionEnded(): void {
    this.sessions--;
    this.settle();
  }

  firstEnded(): void {
    this.first = false;
    this.settle();
  }

  /** SIGTERM to every process in the cage, the end after `timeoutSeconds`; resolves once torn down. */
  stop(timeoutSeconds: number): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      this.unwatch();
      const timer = setTimeout(resolve, timeoutSeconds * 1000);
      const check = () => {
        const left = cageProcesses(this.pidns, this.own);
        if (left.length === 0) {
          clearTimeout(timer);
          resolve();
        } else {
          // Processes forked since the last look get their SIGTERM too.
          this.watch(left, check, 'SIGTERM');
        }
      };
      check();
    }).then(() => {
      // What ignored SIGTERM dies now: the holder's end takes the pid namespace down (SIGKILL).
      this.unwatch();
      this.markEnded();
    });
    return this.stopping.then(() => this.over);
  }

  private readonly settle = (): void => {
    if (this.stopping || this.keep || this.first || this.sessions > 0) return;
    const left = cageProcesses(this.pidns, this.own);
    if (left.length === 0) this.markEnded();
    else this.watch(left, this.settle);
  };

  /**
   * Watches each of `pids` not watched yet (signalled first, with `signal`); `onExit` runs at each
   * exit. A process that ended between the scan and its pidfd is an exit too: `onExit` runs for it
   * (once, on the next turn), or the cage would wait for a wake-up that never comes.
   */
  private watch(pids: number[], onExit: () => void, signal?: NodeJS.Signals): void {
    let gone = false;
    for (const pid of pids) {
      if (this.watched.has(pid)) continue;
      const pidfd = this.pidfdInCage(pid);
      if (pidfd === null) {
        gone = true;
        continue;
      }
      if (signal) {
        try {
          new CagedProcess(pid, pidfd).kill(signal);
        } catch {
          // exited meanwhile: its pidfd is readable and the watch below fires at once
        }
      }
      const watch = watchExit(pidfd, () => {
        this.watched.delete(pid);
        onExit();
      });
      this.watched.set(pid, watch);
    }
    if (gone) setImmediate(() => this.ending || onExit());
  }

  /** A pidfd for `pid` while it is still the process the scan found in the cage; null once it is gone. */
  private pidfdInCage(pid: number): number | null {
    let pidfd: number;
    try {
      pidfd = pidfdOpen(pid);
    } catch {
      return null;
    }
    // Reaped between the scan and pidfd_open, its pid maybe reused: then it is none of ours.
    if (nsInode(pid, 'pid') !== this.pidns) {
      closeSync(pidfd);
      return null;
    }
    return pidfd;
  }

  private unwatch(): void {
    for (const w of this.watched.values()) w.stop();
    this.watched.clear();
  }
}
