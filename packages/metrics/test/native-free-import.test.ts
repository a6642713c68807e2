// @wirecage/metrics is prom-client and a small HTTP server: importing it loads
// no native addon at all (it takes the engine's pure host-port and stats
// subpaths, not its main entry, which loads sodium-native) and not the data
// plane (piscina). Checked on dist/ in a fresh Node, with wg-engine's probe.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PROBE = fileURLToPath(new URL('../../wg-engine/test/fixtures/loaded-natives.mjs', import.meta.url));

function loadedBy(specifier: string): { addons: string[]; cjs: string[] } {
  const r = spawnSync(process.execPath, [PROBE, specifier], { encoding: 'utf8' });
  assert.equal(r.status, 0, `importing ${specifier} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { addons: string[]; cjs: string[] };
}

const fromPackage = (cjs: string[], name: string) => cjs.filter((path) => path.includes(`/node_modules/${name}/`));

describe('importing @wirecage/metrics', () => {
  it('loads no native addon and no piscina; prom-client, its job, is there', () => {
    const { addons, cjs } = loadedBy('@wirecage/metrics');
    assert.deepEqual(addons, []);
    assert.deepEqual(fromPackage(cjs, 'piscina'), []);
    assert.notDeepEqual(fromPackage(cjs, 'prom-client'), []);
  });
});
