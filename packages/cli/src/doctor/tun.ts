// /dev/net/tun: stage 2 opens it, as this user's root in the cage's user
// namespace, which grants nothing over a host device: the file's mode must
// let this user read and write it. Fresh VMs sometimes have it 0600 where the
// distributions' udev rule makes it 0666.
import { accessSync, constants, statSync } from 'node:fs';
import type { DoctorCheck } from './check.js';

export function checkTunDevice(path = '/dev/net/tun'): DoctorCheck {
  const name = path;
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return { name, ok: false, detail: 'missing', fix: 'load the tun module: sudo modprobe tun' };
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return { name, ok: true, detail: `readable and writable by uid ${process.getuid?.()} (mode ${mode})` };
  } catch {
    return {
      name,
      ok: false,
      detail: `not readable and writable by uid ${process.getuid?.()} (mode ${mode})`,
      fix: `run \`sudo chmod 0666 ${path}\`, as the distributions' udev rule does`,
    };
  }
}
