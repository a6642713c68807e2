// The kernel calls wirecage's native code makes without a fallback: the
// newest is close_range's CLOSE_RANGE_CLOEXEC, which sets the limit.
import { release } from 'node:os';
import type { DoctorCheck } from './check.js';

const FEATURES: [string, number, number][] = [
  ['pidfd_send_signal', 5, 1],
  ['pidfd_open', 5, 3],
  ['close_range', 5, 9],
  ['close_range CLOSE_RANGE_CLOEXEC', 5, 11],
];

export function checkKernel(kernelRelease = release()): DoctorCheck {
  const name = 'kernel';
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return { name, ok: false, detail: `cannot read the version of "${kernelRelease}"`, fix: 'wirecage needs Linux 5.11 or newer' };
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const missing = FEATURES.filter(([, ma, mi]) => major < ma || (major === ma && minor < mi)).map(([f, ma, mi]) => `${f} (${ma}.${mi})`);
  if (missing.length === 0)
    return { name, ok: true, detail: `${kernelRelease} has pidfd_open, pidfd_send_signal and close_range with CLOSE_RANGE_CLOEXEC (5.11)` };
  return { name, ok: false, detail: `${kernelRelease} lacks ${missing.join(', ')}`, fix: 'upgrade to Linux 5.11 or newer' };
}
