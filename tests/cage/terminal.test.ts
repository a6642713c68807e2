// The command's terminal. With a terminal on stdin, the command gets a
// pseudo-terminal of its own in a session of its own, relayed to the caller's
// (as `ssh -t` does): it sees a terminal with the caller's settings and size,
// job control works inside, and nothing it does to its terminal reaches the
// caller's. Without one, it has no controlling terminal at all. script(1)
// plays the caller's terminal.
import assert from 'node:assert/strict';
import { formatCommand } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import { cageClient, WIRECAGE_BIN, cageLab, type CageLab } from '../lib/cage.js';

describe('wirecage run: terminal', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let c: CageLab;
  let conf: string;
  after(() => lab.teardown());

  before(async () => {
    c = await cageLab(lab);
    const srv = c.servers[0]!;
    ({ conf } = await cageClient(srv, c.dir, 'tty'));
  });

  /** `outer` (a sh script that may call `$CAGE cmd...`) on the terminal script(1) makes; its output and status. */
  function onTerminal(outer: string, input = '') {
    const cage = formatCommand(process.execPath, [WIRECAGE_BIN, 'run', '-c', conf, '--']);
    return c.client.run('script', ['-qec', formatCommand('sh', ['-c', outer]), '/dev/null'], {
      input,
      env: { PATH: process.env.PATH, CAGE: cage, TERM: 'dumb' },
      timeoutMs: 30_000,
    });
  }

  it("gives the command a terminal of its own, with the caller's size, and passes its status back", async () => {
    const r = await onTerminal(
      'stty rows 31 cols 97; echo "outer=$(tty)"; $CAGE sh -c \'echo "inner=$(tty) size=$(stty size)"; exit 7\'; echo "status=$?"',
    );
    const outer = /outer=(\S+)/.exec(r.stdout)?.[1];
    const inner = /inner=(\S+)/.exec(r.stdout)?.[1];
    assert.ok(outer?.startsWith('/dev/pts/') && inner?.startsWith('/dev/pts/'), r.stdout + r.stderr);
    assert.notEqual(inner, outer, "the command shares the caller's terminal");
    assert.match(r.stdout, /size=31 97/);
    assert.match(r.stdout, /status=7/);
  });

  it("hands the caller's terminal back as it was (cooked, echo on)", async () => {
    const r = await onTerminal(
      'before=$(stty -g); $CAGE true; after=$(stty -g); [ "$before" = "$after" ] && echo same || echo "changed: $before -> $after"',
    );
    // (script(1) may echo a ^@ of its own before it: it writes an end-of-file to a raw terminal.)
    assert.match(r.stdout, /(^|\^@)same\r?$/m, r.stdout);
  });

  it('relays all of a large output, to the last line', async () => {
    const r = await onTerminal('$CAGE seq 1 100000 | tail -n 1');
    // The pipe is outside the cage: seq's output crosses the relay first.
    assert.match(r.stdout, /(^|\^@)100000\r?$/m, r.stdout.slice(-200));
  });

  it("relays the caller's keystrokes to the command", async () => {
    const r = await onTerminal('$CAGE sh -c \'read line; echo "got=$line"\'', 'hello cage\n');
    assert.match(r.stdout, /got=hello cage/);
  });

  it("runs in the background without stopping, reading nothing of the caller's terminal", async () => {
    // set -m: a job-control shell puts the background job in a process group of its own.
    const r = await onTerminal(
      'set -m; $CAGE sh -c \'if read x; then echo "stole=$x"; else echo eof; fi\' & wait $!; echo "bg=$?"',
      'typed\n',
    );
    assert.match(r.stdout, /^eof\r?$/m, r.stdout + r.stderr);
    assert.match(r.stdout, /bg=0/);
  });

  it('leaves the command without a controlling terminal when stdin is not a terminal', async () => {
    const probe = 'if (: > /dev/tty) 2>/dev/null; then echo has-tty; else echo no-tty; fi; ps -o sid= -p $$ | tr -d " "; echo "pid=$$"';
    const r = await onTerminal(`$CAGE sh -c '${probe}' < /dev/null`);
    assert.match(r.stdout, /no-tty/, r.stdout + r.stderr);
    // The session leader is the command itself: it is outside the caller's session.
    const [sid, pid] = [/^(\d+)\r?$/m.exec(r.stdout)?.[1], /pid=(\d+)/.exec(r.stdout)?.[1]];
    assert.equal(sid, pid, r.stdout);
  });
});
