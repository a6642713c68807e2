// "The network changed" from the kernel: a NETLINK_ROUTE socket subscribed to
// link, address and route notifications (what `ip monitor link address route`
// prints), watched on the event loop. Callers only need to know that
// something changed, so the messages are drained unread.
import { closeSync } from 'node:fs';
import { native } from './native.js';
import { NetnsError } from './errors.js';
import { watchReadable } from './sockets.js';

const addon = native;

export interface NetlinkChange {
  /** Notifications read in this wake-up (each datagram holds one or more messages). */
  datagrams: number;
  /** The kernel dropped notifications because the socket's queue was full: more changed than was read. */
  overflowed: boolean;
}

export interface NetlinkMonitorOptions {
  /** The network namespace to watch, as an fd; default this thread's own (the caller's). */
  netnsFd?: number | null;
  /** Reading the socket failed; the monitor is closed by then. */
  onError?: (err: NetnsError) => void;
}

export class NetlinkMonitor {
  private watcher: { stop(): void } | null;
  private readonly buffer = Buffer.alloc(64 * 1024);

  private constructor(
    private fd: number,
    onChange: (change: NetlinkChange) => void,
    onError: ((err: NetnsError) => void) | undefined,
  ) {
    this.watcher = watchReadable(fd, (err) => {
      if (this.watcher === null) return;
      let change: NetlinkChange;
      try {
        if (err) throw err;
        change = addon.netlinkMonitorDrain(this.fd, this.buffer);
      } catch (e) {
        this.close();
        if (onError) onError(e as NetnsError);
        return;
      }
      if (change.datagrams > 0 || change.overflowed) onChange(change);
    });
  }

  /**
   * Starts watching links, IPv4/IPv6 addresses and IPv4/IPv6 routes. `onChange` runs once per
   * wake-up of the event loop, however many notifications arrived. Receiving needs no privilege.
   */
  static open(onChange: (change: NetlinkChange) => void, options: NetlinkMonitorOptions = {}): NetlinkMonitor {
    const fd = addon.netlinkMonitorOpen(options.netnsFd ?? null);
    try {
      return new NetlinkMonitor(fd, onChange, options.onError);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get closed(): boolean {
    return this.watcher === null;
  }

  close(): void {
    if (this.watcher === null) return;
    this.watcher.stop();
    this.watcher = null;
    closeSync(this.fd);
    this.fd = -1;
  }
}
