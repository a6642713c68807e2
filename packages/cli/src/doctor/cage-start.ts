// The advice a failing `wirecage run` prints (exit 125) when its cage could
// not start for one of the reasons `wirecage doctor` checks: the same words,
// so a user meets one answer whichever they ran first. For stage 2, which
// sees the error itself; it loads no oclif.
import { NetnsError } from '@wirecage/netns';
import { TunError } from '@wirecage/tun';
import { checkTunDevice } from './tun.js';
import { userNamespaceAdvice, type UserNamespaceAdviceOptions } from './userns-advice.js';

// A namespace refused: EPERM when capabilities are missing (Ubuntu's unprivileged_userns profile
// takes them all), EACCES from an LSM, ENOSPC/EUSERS at user.max_user_namespaces.
const REFUSED = new Set(['EPERM', 'EACCES', 'ENOSPC', 'EUSERS']);

/** What to do about `err`, or null when it is not one of doctor's causes. */
export function cageStartAdvice(err: unknown, options: Omit<UserNamespaceAdviceOptions, 'refused'> = {}): string | null {
  if (err instanceof NetnsError && err.syscall === 'unshare' && REFUSED.has(err.code))
    return userNamespaceAdvice({ ...options, refused: true });
  if (err instanceof TunError && err.syscall === 'open' && err.code === 'EACCES')
    return checkTunDevice(err.path ?? '/dev/net/tun').fix ?? null;
  return null;
}
