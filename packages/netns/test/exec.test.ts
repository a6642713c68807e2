import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const INDEX = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Runs `script` (an ES module body with `m` = @wirecage/netns) in a fresh node and returns what happened. */
function node(script: string) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(INDEX)});\n${script}`], {
    encoding: 'utf8',
    timeout: 10_000,
  });
}

/** fds above 2 this process holds without close-on-exec: whatever started us passed them down, and every child gets them too. */
function inheritedFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      if (fd <= 2) return false;
      try {
        const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
        return (parseInt(flags, 8) & 0o2000000) === 0;
      } catch {
        return false;
      }
    });
}

describe('execWithInput', () => {
  it('becomes the program: same pid, its stdio and exit status, the input on fd 3, exactly the env given', () => {
    const r = node(`
      process.stdout.write('pid ' + process.pid + '\\n');
      m.execWithInput(['/bin/sh', '-c', 'echo "sh $$"; cat <&3; echo; env | sort; echo err >&2; ls /proc/self/fd | tr "\\n" " "; echo; exit 7'], { PATH: '/usr/bin:/bin', ONLY: 'this' }, Buffer.from('{"spec":1}'));
    `);
    assert.equal(r.status, 7, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0]!.split(' ')[1], lines[1]!.split(' ')[1], 'the program kept the pid');
    assert.equal(lines[2], '{"spec":1}');
    // sh adds PWD (and some shells SHLVL, _) itself; ours are exactly ONLY and PATH.
    const env = lines.slice(3, -2).filter((l) => !/^(PWD|SHLVL|_)=/.test(l));
    assert.deepEqual(env, ['ONLY=this', 'PATH=/usr/bin:/bin']);
    assert.equal(r.stderr, 'err\n');
    // 0-2, fd 3 and the one ls reads /proc/self/fd with: nothing of Node's survived.
    const passedDown = new Set(inheritedFds());
    const fds = lines
      .at(-2)!
      .trim()
      .split(' ')
      .map(Number)
      .filter((fd) => !passedDown.has(fd));
    assert.equal(fds.length, 5, lines.at(-2));
    assert.deepEqual(fds.sort((a, b) => a - b).slice(0, 4), [0, 1, 2, 3]);
  });

  it('hands extraFds over as fds 4, 5, ... in order, the same open files (a lock goes on being held)', () => {
    const r = node(`
      const { openSync } = await import('node:fs');
      const a = openSync('/etc/hostname', 'r');
      const b = openSync('/etc/passwd', 'r');
      // b first: fd 4 must be b even though a's number is lower, and placing one must not close the other.
      m.execWithInput(['/bin/sh', '-c', 'readlink /proc/self/fd/4 /proc/self/fd/5; ls /proc/self/fd | tr "\\n" " "'], { PATH: '/usr/bin:/bin' }, Buffer.alloc(0), [b, a]);
    `);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 2), ['/etc/passwd', '/etc/hostname']);
    const passedDown = new Set(inheritedFds());
    const fds = lines[2]!
      .trim()
      .split(' ')
      .map(Number)
      .filter((fd) => !passedDown.has(fd));
    // 0-5 and the one ls reads /proc/self/fd with: the lifted copies did not survive.
    assert.equal(fds.length, 7, lines[2]);
  });

  it('throws (and the process goes on) when the program cannot be run', () => {
    const r = node(`
      try { m.execWithInput(['/nonexistent/prog'], {}, Buffer.alloc(0)); } catch (e) { console.log(e.code, e.syscall); }
      console.log('still here');
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ENOENT access\nstill here\n');
  });
});
