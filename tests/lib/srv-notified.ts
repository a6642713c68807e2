// `wirecagesrv up` as a Type=notify unit runs it: $NOTIFY_SOCKET names a
// NotifyListener in the lab's directory (a path: the server's namespace scopes
// abstract names), closed by the lab's teardown.
import { join } from 'node:path';
import { NotifyListener } from './notify-listener.js';
import type { LabProcess } from './process.js';
import { startWirecagesrv, type SrvLab, type SrvStart } from './srv-lab.js';

export interface NotifiedServer {
  server: LabProcess;
  notify: NotifyListener;
}

/** startWirecagesrv with $NOTIFY_SOCKET; with `ready`, resolves once the server has said READY=1. */
export async function startNotified(l: SrvLab, start: SrvStart, opts: { ready?: boolean } = {}): Promise<NotifiedServer> {
  const notify = new NotifyListener(join(l.dir, 'notify'));
  l.lab.onTeardown(() => notify.close());
  const server = await startWirecagesrv(l, { ...start, env: { ...start.env, NOTIFY_SOCKET: notify.path } });
  if (opts.ready) await notify.ready(server);
  return { server, notify };
}
