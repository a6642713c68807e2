// Which client key a `wirecage run NAME` uses. One key is one WireGuard peer with one address on
// the server: two runs at once with the same key would fight over the server's session and
// endpoint, and each would break the other's flows. So every run that is going on at once holds a
// key slot of its own: slot 1 is keys/NAME.key with keys/NAME.lease.json (the files of a single
// run, as before slots existed), slot k > 1 is keys/NAME.k.key with keys/NAME.k.lease.json, made
// on first use the same way. A run holds the flock of its slot's keys/NAME[.k].lock for the life
// of its cage (stage 2 inherits the fd); the first slot whose lock is free is taken, so runs one
// after another keep using slot 1 and its stored registration.
import { closeSync, constants, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { RunError } from '../cage/run-error.js';
import { keyFileFor } from './config.js';

/** More runs at once than this for one server is taken for a runaway loop, not a user. */
export const MAX_KEY_SLOTS = 16;

export interface KeySlotFiles {
  slot: number;
  keyFile: string;
  leaseFile: string;
  lockFile: string;
}

/** The files of slot `slot` (1-based) of server `name`. */
export function keySlotFiles(name: string, slot: number): KeySlotFiles {
  if (!Number.isInteger(slot) || slot < 1 || slot > MAX_KEY_SLOTS) throw new RangeError(`key slot ${slot} is not in 1-${MAX_KEY_SLOTS}`);
  const base = keyFileFor(name).replace(/\.key$/, slot === 1 ? '' : `.${slot}`);
  return { slot, keyFile: `${base}.key`, leaseFile: `${base}.lease.json`, lockFile: `${base}.lock` };
}

export interface KeySlot extends KeySlotFiles {
  /** Holds the slot's flock (close-on-exec here): keep it open, and hand it to stage 2, for the cage's life. */
  lockFd: number;
}

/** Takes the first free slot of server `name`; a RunError when all MAX_KEY_SLOTS are held. */
export async function claimKeySlot(name: string): Promise<KeySlot> {
  const { flockExclusive } = await import('@wirecage/netns');
  for (let slot = 1; slot <= MAX_KEY_SLOTS; slot++) {
    const files = keySlotFiles(name, slot);
    if (slot === 1) mkdirSync(dirname(files.lockFile), { recursive: true, mode: 0o700 });
    const fd = openSync(files.lockFile, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    let held = false;
    try {
      held = flockExclusive(fd);
    } finally {
      if (!held) closeSync(fd);
    }
    if (held) return { ...files, lockFd: fd };
  }
  throw new RunError(
    `all ${MAX_KEY_SLOTS} key slots of server "${name}" are in use: as many \`wirecage run ${name}\` are running, each with a key of its own; ` +
      `to run more commands in one tunnel, start it with \`wirecage run ${name} --name CAGE\` and add them with \`wirecage exec CAGE -- CMD\``,
  );
}
