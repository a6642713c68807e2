// A NETLINK_NETFILTER socket in a network namespace (native/nfnetlink.cc): the
// kernel's netfilter configuration (nf_tables batches) and events (conntrack's
// new and destroy groups). Messages are bytes here; their users build and
// parse them, as the contents are theirs to know.
import { closeSync } from 'node:fs';
import { native } from './native.js';
import { NetnsError } from './errors.js';
import { watchReadable } from './sockets.js';

interface NfnlAddon {
  nfnlOpen(nsFd: number | null, groups: number[]): number;
  nfnlSend(fd: number, data: Uint8Array): void;
  nfnlRecv(fd: number, buffer: Buffer): number;
  netnsWriteSysctl(nsFd: number, path: string, value: string): void;
}

const addon = native as unknown as NfnlAddon;

/** What one read returns: a datagram (a view into the socket's buffer, valid until the next read), nothing waiting, or messages the kernel dropped. */
export type NfnlRead = Buffer | 'empty' | 'overflow';

export class NfnlSocket {
  private watcher: { stop(): void } | null = null;
  private readonly buffer = Buffer.alloc(256 * 1024);

  private constructor(private fd: number) {}

  /**
   * Opens the socket in `netnsFd` (default: the caller's namespace), joined to the given multicast
   * groups (e.g. NFNLGRP_CONNTRACK_NEW = 1, NFNLGRP_CONNTRACK_DESTROY = 3). Joining a group and
   * changing the namespace's netfilter need CAP_NET_ADMIN over that namespace.
   */
  static open(netnsFd: number | null, groups: readonly number[] = []): NfnlSocket {
    return new NfnlSocket(addon.nfnlOpen(netnsFd, [...groups]));
  }

  send(data: Uint8Array): void {
    this.check();
    addon.nfnlSend(this.fd, data);
  }

  /** One datagram, never blocking. */
  read(): NfnlRead {
    this.check();
    const n = addon.nfnlRecv(this.fd, this.buffer);
    if (n === -1) return 'empty';
    if (n === -2) return 'overflow';
    return this.buffer.subarray(0, n);
  }

  /** Calls `onReadable` on the event loop whenever a datagram waits; read() them all there. */
  watch(onReadable: (err: NetnsError | null) => void): void {
    this.check();
    if (this.watcher) throw new Error('NfnlSocket: already watched');
    this.watcher = watchReadable(this.fd, onReadable);
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.watcher?.stop();
    this.watcher = null;
    closeSync(this.fd);
    this.fd = -1;
  }

  private check(): void {
    if (this.fd < 0) throw new Error('NfnlSocket: closed');
  }
}

/** Writes a /proc/sys/net/ file as the namespace `netnsFd` sees it (each namespace has its own), e.g. nf_conntrack_acct. */
export function writeNetnsSysctl(netnsFd: number, path: string, value: string): void {
  addon.netnsWriteSysctl(netnsFd, path, value);
}
