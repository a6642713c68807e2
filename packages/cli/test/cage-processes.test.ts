// cageProcesses against real processes: a zombie is not counted (it runs
// nothing, and its pidfd is readable already: a named cage watching it would
// spin, and one waiting for it would wait for its parent instead).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from '@wirecage/netns/lab';
import { cageProcesses, childrenOf, isZombie, nsInode } from '../src/cage/named.js';

describe('cageProcesses', function () {
  this.timeout(20_000);
  let parent: ChildProcess;
  after(() => {
    parent?.kill('SIGKILL');
  });

  it('counts a running process of the namespace and leaves out its zombie child', async () => {
    // sh forks `true` and becomes sleep, which never reaps it.
    parent = spawn('sh', ['-c', 'true & exec sleep 60'], { stdio: 'ignore' });
    const pid = parent.pid!;
    const zombie = await waitFor(
      'the unreaped child to be a zombie',
      () => childrenOf(pid).find((c) => isZombie(c) && childrenOf(pid).length === 1),
      10_000,
    );
    const listed = cageProcesses(nsInode(process.pid, 'pid')!, [process.pid]);
    assert.ok(listed.includes(pid), 'the sleeping parent is counted');
    assert.ok(!listed.includes(zombie), `zombie ${zombie} is counted`);
    assert.ok(!listed.includes(process.pid), 'an own pid is counted');
  });

  it('tells a zombie, a running process and a pid that is gone apart', () => {
    assert.equal(isZombie(process.pid), false);
    assert.equal(isZombie(2 ** 22 + 1), true, 'a pid above pid_max is gone: nothing to wait for');
  });
});
