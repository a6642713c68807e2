// The main entry is the protocol core: importing it loads no addon of ours
// (@wirecage/tun, @wirecage/netns) and no piscina, so keygen, pubkey,
// @wirecage/metrics and stage 1 of `wirecage run` never need the built TUN
// addon. The data plane, which does, is the subpath ./data-plane. Checked on
// dist/ (what a user imports) in a fresh Node each time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PROBE = fileURLToPath(new URL('./fixtures/loaded-natives.mjs', import.meta.url));

/** What a fresh Node holds after importing `specifier`: native addons mapped, CommonJS files loaded. */
function loadedBy(specifier: string): { addons: string[]; cjs: string[] } {
  const r = spawnSync(process.execPath, [PROBE, specifier], { encoding: 'utf8' });
  assert.equal(r.status, 0, `importing ${specifier} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { addons: string[]; cjs: string[] };
}

// sodium-native is the engine's crypto: the one addon the core may load.
const notCrypto = (addons: string[]) => addons.filter((path) => !path.includes('/sodium-native/'));
const fromPackage = (cjs: string[], name: string) => cjs.filter((path) => path.includes(`/node_modules/${name}/`));

describe('importing @wirecage/wg-engine', () => {
  it('loads no native addon but the crypto, and no piscina', () => {
    const { addons, cjs } = loadedBy('@wirecage/wg-engine');
    assert.deepEqual(notCrypto(addons), []);
    assert.deepEqual(fromPackage(cjs, 'piscina'), []);
  });

  it('@wirecage/wg-engine/data-plane loads the TUN addon and piscina (what the main entry leaves out)', () => {
    const { addons, cjs } = loadedBy('@wirecage/wg-engine/data-plane');
    assert.ok(notCrypto(addons).some((path) => path.endsWith('/tun.node')), `no tun.node among ${addons.join(', ')}`);
    assert.notDeepEqual(fromPackage(cjs, 'piscina'), []);
  });
});
