// `wirecage doctor`: every check a cage needs on this machine, in order.
import type { DoctorCheck } from './check.js';
import { checkConfigDir } from './config-dir.js';
import { checkKernel } from './kernel.js';
import { checkTunDevice } from './tun.js';
import { checkUserNamespaces } from './userns.js';

export { formatCheck, type DoctorCheck } from './check.js';
export { checkConfigDir, checkKernel, checkTunDevice, checkUserNamespaces };
export { userNamespaceAdvice, type UserNamespaceAdviceOptions } from './userns-advice.js';

export function runDoctor(): DoctorCheck[] {
  return [checkUserNamespaces(), checkTunDevice(), checkKernel(), checkConfigDir()];
}
