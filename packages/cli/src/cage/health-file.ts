// The tunnel's healing state (heal.ts: up or handshaking, up since, the last
// error) for `wirecage show` and `wirecage ps`: a small JSON file next to the
// cage's UAPI socket, `<tun>@<pid>.health.json`, rewritten by stage 2 when the
// state changes (a few times an outage, not per packet). A file rather than a
// key on the UAPI socket: the UAPI is wg's protocol (`wg show` reads it and
// must not meet keys it does not know), and reading a file needs no running
// event loop in stage 2 to answer. Written atomically (a new file renamed over
// the old: a reader never sees half of one), 0600 in the checked runtime dir
// (runtime-dir.ts), never through a link.
import { closeSync, constants, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerHealth } from './heal.js';

export interface CageHealth {
  /** Wall-clock ms of the change this state describes. */
  updated: number;
  peers: PeerHealth[];
}

/** Where the cage of stage 2 `pid` with tunnel `tun` keeps its state. */
export function healthFile(runtimeDir: string, tun: string, pid: number): string {
  return join(runtimeDir, `${tun}@${pid}.health.json`);
}

export function writeHealth(file: string, peers: PeerHealth[], now = Date.now()): void {
  const temp = `${file}.${process.pid}.new`;
  rmSync(temp, { force: true });
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ updated: now, peers } satisfies CageHealth)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}

/** The cage's state, or null when it has none (an older wirecage, or not written yet) or it cannot be read. */
export function readHealth(file: string): CageHealth | null {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  const d = doc as Partial<CageHealth> | null;
  if (!d || typeof d.updated !== 'number' || !Array.isArray(d.peers)) return null;
  return { updated: d.updated, peers: d.peers };
}

export function removeHealth(file: string): void {
  rmSync(file, { force: true });
}
