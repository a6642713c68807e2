// Stage 1 of `wirecage run` (the oclif command, before it execs stage 2) pays
// for no native addon at all and no prom-client at import: a --help, a bad
// flag or a config error never needs them (configuration takes the engine's
// native-free @wirecage/wg-engine/config; its crypto, sodium-native, loads only
// for a server run, in the modules run.ts imports then). The cage launcher, which needs
// @wirecage/netns's addon, is imported only when the run launches; TUN,
// the data plane and metrics are stage 2's. Checked on dist/ in a fresh Node,
// with the lab's loadedBy().
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { fromPackage, loadedBy } from '@wirecage/netns/lab';

const dist = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));

describe('stage 1 of wirecage run', () => {
  it('importing the run command loads no native addon, no prom-client and no piscina', () => {
    const { addons, cjs } = loadedBy(dist('commands/run.js'));
    assert.deepEqual(addons, []);
    assert.deepEqual(fromPackage(cjs, 'prom-client'), []);
    assert.deepEqual(fromPackage(cjs, 'piscina'), []);
  });

  it('the launcher it imports at launch time maps the netns addon (what the run command defers)', () => {
    const { addons } = loadedBy(dist('cage/launch.js'));
    assert.ok(
      addons.some((path) => path.endsWith('/netns.node')),
      `no netns.node among ${addons.join(', ')}`,
    );
  });
});
