// How wirecage-cage seals every process stage 2 starts into a cage: an
// unnamed cage's command, a named cage's holder (named-holder.ts) and the
// --on-publish hook (servers/on-publish.ts). One place, so that none of them
// is sealed less than the others by an oversight: the cage's network and
// sysctls, its private directories, shares and hidden paths, a pid namespace
// (what it starts dies with it, or with us: nothing keeps the cage's network
// alive) and a user namespace of its own, no capability, no_new_privs, a
// session of its own.
import type { BindMount, CageSpawnOptions } from '@wirecage/netns';
import type { CageSpec } from './spec.js';

export type SealedSpawnOptions = Omit<CageSpawnOptions, 'file' | 'args' | 'argv0' | 'env' | 'cwd' | 'stdio'>;

export function sealedSpawnOptions(spec: CageSpec, netnsFd: number, mounts: BindMount[]): SealedSpawnOptions {
  return {
    netnsFd,
    mounts,
    tmpfs: spec.seal.tmpfs,
    dirs: spec.seal.dirs,
    sysfs: true,
    readOnlyKernelFiles: spec.seal.readOnlyKernelFiles,
    sysctls: spec.seal.sysctls,
    hide: spec.hide,
    user: spec.user,
    pidNamespace: true,
    lingerMs: spec.lingerSeconds * 1000,
    userns: { uidMap: spec.seal.uidMap, gidMap: spec.seal.gidMap },
    dropCapabilities: spec.seal.dropCapabilities,
    noNewPrivs: true,
    newSession: true,
  };
}

/** The environment of a command in the cage: the caller's (as the seal passes it) and how to tell it is caged. */
export function cageEnv(spec: CageSpec, tunName: string): Record<string, string> {
  return { ...spec.env, WIRECAGE: '1', WIRECAGE_TUN: tunName };
}
