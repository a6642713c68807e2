// The main entry is the protocol core: importing it loads no addon of ours
// (@wirecage/tun, @wirecage/netns) and no piscina, so keygen, pubkey,
// @wirecage/metrics and stage 1 of `wirecage run` never need the built TUN
// addon. The data plane, which does, is the subpath ./data-plane. Checked on
// dist/ (what a user imports) in a fresh Node each time, with the lab's loadedBy().
import assert from 'node:assert/strict';
import { fromPackage, loadedBy } from '@wirecage/netns/lab';

// sodium-native is the engine's crypto: the one addon the core may load.
const notCrypto = (addons: string[]) => addons.filter((path) => !path.includes('/sodium-native/'));

describe('importing @wirecage/wg-engine', () => {
  it('loads no native addon but the crypto, and no piscina', () => {
    const { addons, cjs } = loadedBy('@wirecage/wg-engine');
    assert.deepEqual(notCrypto(addons), []);
    assert.deepEqual(fromPackage(cjs, 'piscina'), []);
  });

  it('@wirecage/wg-engine/data-plane loads the TUN addon and piscina (what the main entry leaves out)', () => {
    const { addons, cjs } = loadedBy('@wirecage/wg-engine/data-plane');
    assert.ok(
      notCrypto(addons).some((path) => path.endsWith('/tun.node')),
      `no tun.node among ${addons.join(', ')}`,
    );
    assert.notDeepEqual(fromPackage(cjs, 'piscina'), []);
  });
});
