// systemd's side of $NOTIFY_SOCKET for the server suites: a bound unix
// datagram socket that keeps each notification a real `wirecagesrv up` sends,
// with the sender's credentials. A path, not an abstract name: the server
// runs in a lab network namespace, which scopes abstract sockets.
import { closeSync } from 'node:fs';
import { bindUnixDatagram, receiveUnixDatagram, watchReadable } from '@wirecage/netns';
import type { LabProcess } from './process.js';
import { waitFor } from './wait.js';

export interface Notification {
  text: string;
  pid: number;
  uid: number;
  at: number;
}

export class NotifyListener {
  readonly got: Notification[] = [];
  private readonly fd: number;
  private readonly watcher: { stop(): void };

  constructor(readonly path: string) {
    this.fd = bindUnixDatagram(path);
    const buf = Buffer.alloc(4096);
    this.watcher = watchReadable(this.fd, () => {
      for (let d = receiveUnixDatagram(this.fd, buf); d; d = receiveUnixDatagram(this.fd, buf)) {
        this.got.push({ text: buf.subarray(0, d.length).toString(), pid: d.pid, uid: d.uid, at: Date.now() });
      }
    });
  }

  /** The first notification from index `from` on that has the line `line` ("READY=1"), once it arrives. */
  next(server: LabProcess, line: string, from = 0, timeoutMs = 15_000): Promise<Notification & { index: number }> {
    return waitFor(
      () => {
        server.assertRunning();
        const index = this.got.findIndex((n, i) => i >= from && n.text.split('\n').includes(line));
        return index >= 0 ? { ...this.got[index]!, index } : null;
      },
      {
        what: `${line} from notification ${from} on`,
        timeoutMs,
        describe: () => `${this.got.map((n) => n.text).join(' | ')}\n${server.describe()}`,
      },
    );
  }

  ready(server: LabProcess): Promise<Notification> {
    return this.next(server, 'READY=1');
  }

  close(): void {
    this.watcher.stop();
    closeSync(this.fd);
  }
}
