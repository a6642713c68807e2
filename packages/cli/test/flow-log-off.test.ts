// --flow-log costs nothing when it is off: stage 2 and a named cage's control
// socket load no module of the flow log (nor `ps --flows`' conntrack reader)
// until a cage asks for it; they are imported behind `if (spec.flowLog)` and
// on an "op":"flows" request only. Checked on dist/ in a fresh Node that
// records every module it resolves (a loader hook), so a static import added
// anywhere in the graph fails here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const dist = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));

const HOOK = `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.startsWith('file:')) (await import('node:fs')).writeSync(2, 'resolved ' + r.url + '\\n');
  return r;
}`;
const PROBE = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}));
for (const f of process.argv.slice(1)) await import(f);`;

/**
 * The dist/cage/ files a fresh Node resolves while importing `files`. Stage 2 starts at import and,
 * with no spec on fd 3, stops there (`stage2Fails`): by then its whole static graph is linked.
 */
function cageModulesLoadedBy(files: string[], stage2Fails = false): string[] {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, ...files.map(dist)], { encoding: 'utf8' });
  if (stage2Fails) assert.match(r.stderr, /no spec on fd 3/, r.stderr);
  else assert.equal(r.status, 0, r.stderr);
  return [...new Set([...r.stderr.matchAll(/^resolved file:\/\/.*\/dist\/cage\/([^/\n]+\.js)$/gm)].map((m) => m[1]!))];
}

const FLOW_LOG = /^(flow-log|flows)/;

describe('without --flow-log', () => {
  it('stage 2, the named cage and its control socket load nothing of the flow log', () => {
    const loaded = [...cageModulesLoadedBy(['cage/named-cage.js', 'cage/control.js']), ...cageModulesLoadedBy(['cage/stage2.js'], true)];
    for (const f of ['stage2.js', 'named-cage.js', 'control.js'])
      assert.ok(loaded.includes(f), `the probe did not see ${f} among ${loaded.join(', ')}`);
    assert.deepEqual(
      loaded.filter((f) => FLOW_LOG.test(f)),
      [],
    );
  });

  it("the probe sees the flow log's modules when they are imported (what stage 2 does with the flag)", () => {
    const loaded = cageModulesLoadedBy(['cage/flow-log.js']);
    assert.deepEqual(loaded.filter((f) => FLOW_LOG.test(f)).sort(), [
      'flow-log-conntrack.js',
      'flow-log-dns.js',
      'flow-log-file.js',
      'flow-log-kernel.js',
      'flow-log-netlink.js',
      'flow-log.js',
    ]);
  });
});
