// The lab every suite builds on (src/lab.ts): it must work, fail clearly, and
// leave nothing behind: not after dispose(), not when a step of it fails, and
// not when the process ends without it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Lab, LabNetns, alive, fromPackage, loadedBy } from '../src/lab.js';

/** Until `pid` is gone, bounded: the kernel finishes a SIGKILLed process shortly after the signal. */
async function gone(pid: number, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return !alive(pid);
}

const fixture = new URL('./fixtures/lab-left-behind.ts', import.meta.url).pathname;

/** Runs the fixture; resolves with what it printed (namespace, sleeper pid) and how it ended. */
function leaveBehind(
  mode: 'exit' | 'throw' | 'signal',
): Promise<{ name: string; pid: number; code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (mode === 'signal' && out.endsWith('\n')) child.kill('SIGTERM');
    });
    child.stderr.resume();
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const [name, pid] = out.trim().split(' ');
      if (!name || !pid) reject(new Error(`the fixture printed ${JSON.stringify(out)} (exit ${code ?? signal})`));
      else resolve({ name, pid: Number(pid), code, signal });
    });
  });
}

describe('the lab (@wirecage/netns/lab)', () => {
  describe('two namespaces joined by a veth', () => {
    const lab = new Lab();
    let a: LabNetns;
    let b: LabNetns;
    after(() => lab.dispose());

    before(async () => {
      a = lab.namespace('a');
      b = lab.namespace('b');
      await lab.veth(a, b);
    });

    it('names them uniquely per lab, within the kernel limits', () => {
      const other = new Lab({ prefix: 'wcx' });
      assert.match(a.name, /^wct[0-9a-z]{5}-a$/);
      assert.match(other.id, /^wcx[0-9a-z]{5}$/);
      assert.notEqual(other.token, lab.token);
      assert.ok(existsSync(`/run/netns/${a.name}`));
      assert.equal(lab.uniqueIfname('wg'), `wg${lab.token}0`);
    });

    it('refuses bad names with a clear error', () => {
      assert.throws(() => lab.namespace('Bad_Label'), /namespace label "Bad_Label" must be 1-6 of \[a-z0-9\]/);
      assert.throws(() => lab.namespace('a'), /already has a namespace labelled a/);
      assert.throws(() => new Lab({ prefix: 'WC-' }), /lab prefix "WC-" must be 1-4 of \[a-z\]/);
      // A name that exists is someone else's: refused, and left alone.
      assert.throws(() => new LabNetns(a.name, 'a'), new RegExp(`ip netns add ${a.name} failed: .*File exists`));
      assert.ok(existsSync(a.path));
      return assert.rejects(lab.veth(a, b, { names: ['much-too-long-name', 'x'] }), /must be 1-15 chars/);
    });

    it('carries IPv4 and IPv6 between the ends, with lo up', async () => {
      assert.deepEqual(a.linkNames().sort(), ['lo', 'veth0a']);
      for (const [from, to] of [
        [a, '198.18.0.2'],
        [b, '198.18.0.1'],
        [a, 'fd7a:c0de:1::2'],
        [b, '127.0.0.1'],
      ] as const) {
        const ping = await from.exec('ping', '-n', '-c', '1', '-W', '2', to);
        assert.equal(ping.code, 0, `ping ${to} from ${from.name}: ${ping.stdout}${ping.stderr}`);
      }
    });

    it('adds routes by netlink and reports the kernel reason when one is refused', async () => {
      a.addRoute({ to: '198.18.200.0/24', via: '198.18.0.2' });
      assert.match(a.ip('-4', 'route', 'show', '198.18.200.0/24'), /198\.18\.200\.0\/24 via 198\.18\.0\.2 dev veth0a/);
      assert.throws(
        () => a.addRoute({ to: '198.18.201.0/24', via: '198.18.99.1' }),
        /adding route 198\.18\.201\.0\/24 via 198\.18\.99\.1: RTM_NEWROUTE failed: ENETUNREACH/,
      );
      assert.throws(() => a.ip('link', 'set', 'nosuchdev', 'up'), /ip -n wct\w+-a link set nosuchdev up failed: .*nosuchdev/);
      const r = await a.exec('sh', '-c', 'echo out; echo err >&2; exit 3');
      assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', code: 3, signal: null });
    });
  });

  describe('dispose()', () => {
    it('runs its steps newest first while the namespaces exist, then kills what runs inside and removes them', async () => {
      const lab = new Lab();
      const ns = lab.namespace('d');
      const order: string[] = [];
      lab.onDispose(() => order.push(`first ${existsSync(ns.path)}`));
      lab.onDispose(() => order.push(`second ${existsSync(ns.path)}`));
      const [cmd, ...args] = ns.argv('sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done');
      const stubborn = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
      await new Promise((r) => stubborn.stdout.once('data', r));
      await lab.dispose();
      assert.deepEqual(order, ['second true', 'first true']);
      assert.ok(await gone(stubborn.pid!), 'a process inside survived dispose()');
      assert.ok(!existsSync(ns.path));
      assert.deepEqual(lab.namespaces, []);
      await lab.dispose();
    });

    it("removes the namespaces even when a step fails, and then throws that step's error", async () => {
      const lab = new Lab();
      const ns = lab.namespace('f');
      lab.onDispose(() => {
        throw new Error('a step failed');
      });
      await assert.rejects(lab.dispose(), /^Error: a step failed$/);
      assert.ok(!existsSync(ns.path));
    });
  });

  describe('a process that ends without dispose()', () => {
    for (const mode of ['exit', 'throw', 'signal'] as const) {
      it(`leaves no namespace and no process behind (${mode})`, async function () {
        this.timeout(30_000);
        const { name, pid, code, signal } = await leaveBehind(mode);
        assert.deepEqual(
          { code, signal },
          { exit: { code: 0, signal: null }, throw: { code: 1, signal: null }, signal: { code: null, signal: 'SIGTERM' } }[mode],
        );
        assert.ok(!existsSync(`/run/netns/${name}`), `${name} left behind`);
        assert.ok(await gone(pid), `the sleeper ${pid} survived`);
      });
    }
  });

  describe('loadedBy()', () => {
    it('tells the addons and CommonJS files a fresh Node loads for an import', () => {
      const lab = loadedBy(new URL('../dist/lab.js', import.meta.url).pathname);
      assert.ok(
        lab.addons.some((path) => path.endsWith('/netns.node')),
        `no netns.node among ${lab.addons.join(', ')}`,
      );
      const probes = loadedBy(new URL('../dist/cidr.js', import.meta.url).pathname);
      assert.deepEqual(probes.addons, []);
      assert.deepEqual(fromPackage(probes.cjs, 'node-gyp-build'), []);
      assert.throws(
        () => loadedBy('/nonexistent/module.js'),
        /importing \/nonexistent\/module\.js in a fresh Node failed \(status 1\): .*ERR_MODULE_NOT_FOUND/s,
      );
    });
  });
});
