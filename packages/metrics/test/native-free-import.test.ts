// @wirecage/metrics is prom-client and a small HTTP server: importing it loads
// no native addon at all (it takes the engine's pure host-port and stats
// subpaths, not its main entry, which loads sodium-native) and not the data
// plane (piscina). Checked on dist/ in a fresh Node, with the lab's loadedBy().
import assert from 'node:assert/strict';
import { fromPackage, loadedBy } from '@wirecage/netns/lab';

describe('importing @wirecage/metrics', () => {
  it('loads no native addon and no piscina; prom-client, its job, is there', () => {
    const { addons, cjs } = loadedBy('@wirecage/metrics');
    assert.deepEqual(addons, []);
    assert.deepEqual(fromPackage(cjs, 'piscina'), []);
    assert.notDeepEqual(fromPackage(cjs, 'prom-client'), []);
  });
});
