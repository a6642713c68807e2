// `npm pack` of the workspaces that ship, from the checkout, as a release would
// make them: each package's prepack builds it (tsc, the prebuilt addons, the
// oclif manifest) and its postpack tidies up.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOrThrow } from '../lib/exec.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every workspace that is published, in dependency order. */
export const SHIPPED_WORKSPACES = [
  'packages/napi-glue',
  'packages/netns',
  'packages/tun',
  'packages/wg-engine',
  'packages/metrics',
  'packages/cli',
  'apps/wirecagesrv',
];

/** The environment minus what an outer `npm run`/`npm test` put there (npm_config_*, npm_lifecycle_*...). */
export function envWithoutNpm(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

/** Packs the shipped workspaces (or those given) into `dest`; returns the tarballs' absolute paths by package name. */
export async function packWorkspaces(
  dest: string,
  timeoutMs: number,
  workspaces: readonly string[] = SHIPPED_WORKSPACES,
): Promise<Map<string, string>> {
  const args = ['pack', '--json', '--pack-destination', dest, ...workspaces.flatMap((w) => ['-w', w])];
  const r = await runOrThrow('npm', args, { cwd: REPO_ROOT, env: envWithoutNpm(), timeoutMs });
  // Lifecycle scripts print to stdout too; the JSON report is the last thing npm writes.
  const report = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('\n[\n') + 1)) as { name: string; filename: string }[];
  const tarballs = new Map(report.map((p) => [p.name, join(dest, p.filename)]));
  if (tarballs.size !== workspaces.length) {
    throw new Error(`npm pack made ${tarballs.size} tarballs (${[...tarballs.keys()].join(', ')}), expected ${workspaces.length}`);
  }
  return tarballs;
}
