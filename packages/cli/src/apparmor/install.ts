// The root side of `wirecage setup apparmor`: check that this kernel's
// AppArmor mediates user namespaces, write the profile atomically, load it
// with apparmor_parser, and put the previous state back when loading fails
// (a profile the parser rejects would also break apparmor.service at boot).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { profileFile } from './profile.js';
import { WirecageError } from '../errors.js';

/** Where the system's AppArmor lives (the tests move these with a mount namespace, not here). */
export interface AppArmorSystem {
  /** /sys/kernel/security/apparmor */
  securityfs: string;
  /** /etc/apparmor.d */
  apparmorDir: string;
  /** /proc/sys */
  procSys: string;
  /** The PATH searched for apparmor_parser. */
  path: string;
}

export const realSystem = (): AppArmorSystem => ({
  securityfs: '/sys/kernel/security/apparmor',
  apparmorDir: '/etc/apparmor.d',
  procSys: '/proc/sys',
  path: process.env.PATH ?? '',
});

/** A reason not to (or failure to) install, said to the user as is; nothing was left changed. */
export class SetupError extends WirecageError {
  override name = 'SetupError';
}

/** Whether the AppArmor user-namespace restriction is on now (undefined: the kernel has no such switch). */
export function restrictionEnabled(procSys: string): boolean | undefined {
  try {
    return readFileSync(join(procSys, 'kernel', 'apparmor_restrict_unprivileged_userns'), 'utf8').trim() === '1';
  } catch {
    return undefined;
  }
}

/** Refuses, saying why, when a profile would do nothing here: no AppArmor, or one that does not mediate user namespaces. */
export function checkKernel(sys: AppArmorSystem): void {
  if (!existsSync(sys.securityfs)) {
    throw new SetupError(
      `this kernel runs no AppArmor (${sys.securityfs} is missing), so AppArmor restricts no user namespace here and there is nothing to set up; ` +
        '`wirecage doctor` says what, if anything, refuses them',
    );
  }
  const feature = join(sys.securityfs, 'features', 'namespaces', 'userns_create');
  if (!existsSync(feature)) {
    throw new SetupError(
      `this kernel's AppArmor does not mediate user namespaces (${feature} is missing: that came with AppArmor 4, Ubuntu 23.10), ` +
        'so it restricts none and a profile would change nothing; `wirecage doctor` says what, if anything, refuses them',
    );
  }
}

/** apparmor_parser on `path`, or a SetupError saying how to get it. */
export function findParser(path: string): string {
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/')) continue; // a relative PATH entry is not something root should run from
    const file = join(dir, 'apparmor_parser');
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  throw new SetupError(
    'apparmor_parser is not on PATH: install the apparmor package (it is in /usr/sbin, which sudo puts on PATH); nothing written',
  );
}

export interface InstallResult {
  file: string;
  parser: string;
  /** What the file held before, when it existed and differed. */
  replaced?: string;
  /** The file already held exactly this profile: only reloaded. */
  unchanged: boolean;
}

/** Writes `profile` to apparmorDir/wirecage-userns (0644, atomically) and loads it; on failure restores what was there. */
export function installProfile(profile: string, sys: AppArmorSystem, parser: string): InstallResult {
  const file = profileFile(sys.apparmorDir);
  if (!existsSync(sys.apparmorDir))
    throw new SetupError(`${sys.apparmorDir} does not exist: is the apparmor package installed? nothing written`);
  const before = readIfExists(file);
  writeAtomic(file, profile);
  const load = spawnSync(parser, ['-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  if (load.status !== 0) {
    if (before === undefined) rmSync(file, { force: true });
    else writeAtomic(file, before);
    const said = `${load.stderr ?? ''}${load.stdout ?? ''}`.trim() || (load.error?.message ?? `exit status ${load.status ?? load.signal}`);
    const restored = before === undefined ? `${file} removed again` : `the previous ${file} put back`;
    throw new SetupError(`\`${parser} -r ${file}\` failed (${restored}):\n${said}`);
  }
  return { file, parser, replaced: before !== undefined && before !== profile ? before : undefined, unchanged: before === profile };
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SetupError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

// Readers (apparmor.service at boot, a parser run) see the old file or the new one, never half of it.
function writeAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    fchmodSync(fd, 0o644); // whatever the umask (sudo's may be 077): AppArmor's tools read it as others do
    writeFileSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new SetupError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const dirFd = openSync(dirname(file), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
