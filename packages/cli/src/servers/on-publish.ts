// `wirecage run NAME --publish ... --on-publish CMD`, stage 2's side: once the
// command has started (its forwards exist: stage 1 made them before the cage),
// CMD runs with /bin/sh -c in the cage, as the command's user, sealed as the
// command is (the same network namespace, seal, hidden paths and environment,
// WIRECAGE_PUBLISHED and WIRECAGE_PUBLIC_ADDR included), so it reaches a
// client's API on the cage's loopback (qBittorrent, Transmission). Its own
// private /tmp, not the command's: it is a sibling, not a child. Its output
// goes to stderr, keeping the command's stdout the command's own; a failure
// is a warning, never the run's end; it dies with stage 2. A named cage's
// hook is started the same way, not joined to the holder (which would give it
// the cage's /tmp): @wirecage/netns's spawnJoin has no stdio, so it would
// take the caller's terminal and stdout.
import { closeSync, openSync } from 'node:fs';
import { spawnInCage, exitStatusToCode, type BindMount } from '@wirecage/netns';
import type { CageSpec } from '../cage/spec.js';
import { cageEnv, sealedSpawnOptions } from '../cage/sealed-spawn.js';

/** Starts --on-publish, if the run has one; resolves once it ended (warned about when it failed), never rejects. */
export async function runOnPublish(spec: CageSpec, cage: { netnsFd: number; tunName: string; mounts: BindMount[] }): Promise<void> {
  const line = spec.onPublish;
  if (!line) return;
  const warn = (m: string) => {
    if (spec.logLevel !== 'silent' && spec.logLevel !== 'error') process.stderr.write(`wirecage: warning: --on-publish: ${m}\n`);
  };
  const stdin = openSync('/dev/null', 'r');
  let hook;
  try {
    hook = spawnInCage({
      ...sealedSpawnOptions(spec, cage.netnsFd, cage.mounts),
      file: '/bin/sh',
      args: ['-c', line],
      env: cageEnv(spec, cage.tunName),
      cwd: spec.cwd,
      stdio: [stdin, 2, 2],
    });
  } catch (err) {
    warn(`cannot start /bin/sh: ${(err as Error).message}`);
    return;
  } finally {
    closeSync(stdin);
  }
  try {
    const code = exitStatusToCode(await hook.wait());
    if (code !== 0) warn(`${JSON.stringify(line)} exited with ${code}; the command goes on`);
  } catch (err) {
    warn(`waiting for it failed: ${(err as Error).message}`);
  }
}
